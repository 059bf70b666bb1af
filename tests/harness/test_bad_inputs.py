"""The bad-input corpus (tests/bad_inputs/cases.yaml): each case is refused before any compute,
with one line naming the field or file, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import yaml
from support.cli import REPO, assert_one_line_error, run_cli, run_main
from support.data import make_cifar10

CASES = yaml.safe_load((REPO / "tests" / "bad_inputs" / "cases.yaml").read_text())
BASE_CONFIG = REPO / "configs" / "smoke" / "dense.yaml"


class RunsCode:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('owned')",))


def truncated_cifar(tmp: Path) -> None:
    make_cifar10(tmp / "cifar")
    batch = tmp / "cifar" / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:200])


def empty_imagefolder(tmp: Path) -> None:
    for split in ("train", "val"):
        (tmp / "tree" / split / "cat").mkdir(parents=True)


def pickled_code_checkpoint(tmp: Path) -> None:
    (tmp / "evil.pt").write_bytes(pickle.dumps({"conv1.weight": RunsCode()}))


def string_state_dict(tmp: Path) -> None:
    torch.save({"conv1.weight": "not a tensor"}, tmp / "strings.pt")


def list_checkpoint(tmp: Path) -> None:
    torch.save([torch.zeros(3)], tmp / "list.pt")


FIXTURES = {f.__name__: f for f in (truncated_cifar, empty_imagefolder, pickled_code_checkpoint, string_state_dict, list_checkpoint)}
SUBPROCESS_CASES = ("malformed-yaml", "lr-infinite", "pretrained-checkpoint-runs-code")  # also through the real command


def test_corpus_is_large_enough_and_ids_are_unique():
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 25 and len(ids) == len(set(ids))


def by_id(ids: tuple[str, ...]) -> list[dict]:
    return [case for case in CASES if case["id"] in ids]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path, monkeypatch):
    """In this process (`prunebench.cli.main`, the command's entry point): milliseconds a case."""
    refused_cleanly(case, tmp_path, monkeypatch, run_main)


@pytest.mark.slow  # an interpreter start per case
@pytest.mark.parametrize("case", by_id(SUBPROCESS_CASES), ids=SUBPROCESS_CASES)
def test_bad_input_is_refused_cleanly_by_the_command(case, tmp_path, monkeypatch):
    refused_cleanly(case, tmp_path, monkeypatch, run_cli)


def refused_cleanly(case, tmp_path, monkeypatch, runner) -> None:
    monkeypatch.chdir(tmp_path)
    for name, content in (case.get("files") or {}).items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.get("fixture"):
        FIXTURES[case["fixture"]](tmp_path)
    out = tmp_path / "out"

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{out}", str(out)).replace("{dense}", str(BASE_CONFIG))

    if "args" in case:
        args = [fill(arg) for arg in case["args"]]
    else:
        args = ["run", str(BASE_CONFIG)]
    for override in case.get("set", []):
        args += ["--set", fill(override)]
    if args[0] == "run" and "--out" not in args:
        args += ["--out", str(out)]
    result = runner(*args, cwd=tmp_path)
    assert_one_line_error(result, fill(case["expect"]))
    assert not out.exists(), "bad input left a run directory behind"
    assert not (tmp_path / "PWNED").exists()
