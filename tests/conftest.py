"""Session fixtures: smoke runs cached for the session, and a real S3 server. Helpers that tests
import live in the `support` package (tests/support/)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from support.cli import REPO, run_cli
from support.object_storage import S3Server, s3_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads a smoke run's record trains that run: `slow`, like the modules marked so."""
    for item in items:
        if "smoke_results" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory: pytest.TempPathFactory):
    """`smoke_results(name)` runs configs/smoke/NAME.yaml once per session and returns its record."""
    out = tmp_path_factory.mktemp("smoke")
    cache: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in cache:
            result = run_cli("run", str(REPO / "configs" / "smoke" / f"{name}.yaml"), "--out", str(out))
            assert result.returncode == 0, result.stderr[-3000:]
            (path,) = (out / "smoke").glob(f"{name}-*/result.json")
            cache[name] = json.loads(path.read_text())
        return cache[name]

    return get


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server (moto) on loopback for the session, with an empty bucket."""
    with s3_server() as server:
        yield server
