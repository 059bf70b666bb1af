"""What the bad-input corpora (tests/bad_inputs/*.yaml) share: their YAML tags for inputs too
large to write out, placeholders, and the checks that every case makes (nothing written, no
raw control characters reaching a terminal, a time bound)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import yaml
from support.cli import REPO

# Characters a terminal acts on instead of showing (C0 but the newline, DEL, C1, Unicode line
# breaks and bidirectional controls) and lone surrogates, which no terminal encoding can write.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
                         "\u00ad\u061c\u3164\U000e0000-\U000e007f]")  # and invisible ones
# Wall-clock bound on one refusal; the slowest case waits on a storage that never answers (1 s in tests).
TIME_LIMIT_S = 10.0


class CorpusLoader(yaml.SafeLoader):
    """safe_load plus three tags that build large inputs from a few characters:
    `!range N` is [0, ..., N-1] (`!range [A, B]`: [A, ..., B-1]), `!repeat [TEXT, N]` is TEXT N times, and
    `!nest [OPEN, N, INNER, CLOSE]` is OPEN N times, INNER, then CLOSE N times."""


def _range(loader: yaml.SafeLoader, node: yaml.Node) -> list[int]:
    if isinstance(node, yaml.SequenceNode):
        start, stop = loader.construct_sequence(node)
        return list(range(start, stop))
    return list(range(int(loader.construct_scalar(node))))


def _repeat(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    text, times = loader.construct_sequence(node)
    return text * times


def _nest(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    opening, times, inner, closing = loader.construct_sequence(node)
    return opening * times + inner + closing * times


CorpusLoader.add_constructor("!range", _range)
CorpusLoader.add_constructor("!repeat", _repeat)
CorpusLoader.add_constructor("!nest", _nest)


def load_corpus(name: str) -> list[dict[str, Any]]:
    """The cases of tests/bad_inputs/NAME; ids must be unique."""
    cases = yaml.load((REPO / "tests" / "bad_inputs" / name).read_text(), Loader=CorpusLoader)
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), f"{name}: duplicate case ids"
    return cases


def fill(value: Any, places: dict[str, str]) -> Any:
    """`value` with every {NAME} of `places` replaced in its strings (keys included), recursively."""
    if isinstance(value, str):
        for name, text in places.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, dict):
        return {fill(key, places): fill(item, places) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, places) for item in value]
    return value


def snapshot(root: Path) -> set[str]:
    """Every path below `root` (symlinks not followed): what "nothing written" compares."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def assert_no_raw_control(*texts: str) -> None:
    for text in texts:
        found = RAW_CONTROL.search(text)
        assert found is None, f"raw {found.group()!r} in output: {text[max(0, found.start() - 60) : found.end() + 60]!r}"


def closed_port() -> int:
    """A local TCP port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
