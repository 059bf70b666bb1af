"""A W&B API key in the environment never reaches result.json, config dumps, the W&B mirror,
logs or the HTML leaderboard."""

import pytest

from support.cli import REPO, run_cli

pytestmark = pytest.mark.slow  # a smoke run with W&B offline, in a subprocess: not in `make test-fast`

FAKE_KEY = "fake-secret-7f3a9c1e5b2d4086a1c3e5f7"


def test_api_key_appears_in_no_output(tmp_path):
    out = tmp_path / "runs"
    env = {"WANDB_API_KEY": FAKE_KEY, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb-default")}
    run = run_cli("run", str(REPO / "configs" / "smoke" / "global.yaml"), "--out", str(out), "--set", "wandb=offline",
                  "--set", "model.name=lenet_300_100", "--set", "data.layout=flat",
                  "--set", "phases={dense: 1, prune: 1, finetune: 1}", env=env, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    board = run_cli("leaderboard", str(out), "--format", "html", "--out", str(tmp_path / "board.html"), env=env)
    assert board.returncode == 0, board.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "result.json" for p in written) and any(p.suffix == ".wandb" for p in written)
    for path in written:
        assert FAKE_KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"
    for stream in (run.stdout, run.stderr, board.stdout, board.stderr):
        assert FAKE_KEY not in stream
