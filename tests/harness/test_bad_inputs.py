"""The bad-input corpus (tests/bad_inputs/cases.yaml): each case is refused before any compute,
with one line naming the field or file, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from support.cli import REPO, assert_one_line_error, run_cli, run_main
from support.corpus import TIME_LIMIT_S, CorpusLoader, snapshot
from support.data import make_cifar10

from prunebench.harness import checkpoints, models
from prunebench.harness.checkpoints import capture_rng
from prunebench.harness.validation import load_run_config

CASES = yaml.load((REPO / "tests" / "bad_inputs" / "cases.yaml").read_text(), Loader=CorpusLoader)
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


def base_run_dir(tmp: Path) -> Path:
    """The run directory of the base config under {out}, made (a case's files go in it)."""
    run = load_run_config(BASE_CONFIG, [f"output_dir={tmp / 'out'}"]).run_files().local_path()
    run.mkdir(parents=True)
    return run


def resume_state(**changes) -> dict:
    """A checkpoint of the base config's format (resnet20 on digits, dense phase, epoch 1)."""
    model = models.create("resnet20", 10, 3, 32, "default")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    state = {"epoch": 1, "phase": "dense", "trail": [{"epoch": 1, "phase": "dense"}], "elapsed": 1.0, "entry": weights,
             "model": weights, "optimizer": optimizer.state_dict(), "scaler": {}, "method": {}, "rng": capture_rng(None)}  # fmt: skip
    return {**state, **changes}


def checkpoint_fixture(name: str, state) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        path = base_run_dir(tmp) / "checkpoint.pt"
        path.write_bytes(state) if isinstance(state, bytes) else torch.save(state() if callable(state) else state, path)

    write.__name__ = name
    return write


def lenet_weights() -> dict:
    return models.create("lenet_300_100", 10, 3, 32, "default").state_dict()


def result_json_directory(tmp: Path) -> None:
    (base_run_dir(tmp) / "result.json").mkdir()


def sparse_pretrained(tmp: Path) -> None:
    with (tmp / "huge.pt").open("wb") as stream:
        stream.truncate(5 << 30)  # 5 GiB of holes: no disk used, and never read


def fifo_out(tmp: Path) -> None:
    os.mkfifo(tmp / "fifo")


def symlink_loop_out(tmp: Path) -> None:
    (tmp / "loop").symlink_to(tmp / "loop")


CHECKPOINTS = (
    checkpoint_fixture("checkpoint_garbage", b"\x00garbage" * 10),
    checkpoint_fixture("checkpoint_runs_code", pickle.dumps({"epoch": RunsCode()})),
    checkpoint_fixture("checkpoint_wrong_values", {key: "x" for key in checkpoints.KEYS}),
    checkpoint_fixture("checkpoint_missing_key", lambda: {k: v for k, v in resume_state().items() if k != "rng"}),
    checkpoint_fixture("checkpoint_other_architecture", lambda: resume_state(entry=lenet_weights(), model=lenet_weights())),
    checkpoint_fixture("checkpoint_wrong_shape", lambda: resume_state(entry={**resume_state()["entry"], "conv1.weight": torch.zeros(8, 3, 3, 3)})),
    checkpoint_fixture("checkpoint_epoch_beyond_run", lambda: resume_state(epoch=999)),
    checkpoint_fixture("checkpoint_epoch_boolean", lambda: resume_state(epoch=True)),
    checkpoint_fixture("checkpoint_unknown_phase", lambda: resume_state(phase="warmup")),
    checkpoint_fixture("checkpoint_elapsed_string", lambda: resume_state(elapsed="1.0")),
    checkpoint_fixture("checkpoint_elapsed_nan", lambda: resume_state(elapsed=float("nan"))),
    checkpoint_fixture("checkpoint_trail_garbage", lambda: resume_state(trail=[{"epoch": "one"}])),
    checkpoint_fixture("checkpoint_trail_longer_than_epochs", lambda: resume_state(trail=[{"epoch": 1, "phase": "dense"}] * 5)),
    checkpoint_fixture("checkpoint_rng_missing", lambda: resume_state(rng={})),
    checkpoint_fixture("checkpoint_optimizer_garbage", lambda: resume_state(optimizer={"lr": 0.1})),
    checkpoint_fixture("checkpoint_weights_not_tensors", lambda: resume_state(model={"conv1.weight": [1, 2]})),
)
FIXTURES = {f.__name__: f for f in (truncated_cifar, empty_imagefolder, pickled_code_checkpoint, string_state_dict, list_checkpoint,
                                    result_json_directory, sparse_pretrained, fifo_out, symlink_loop_out, *CHECKPOINTS)}  # fmt: skip
# Some run cases are refused only once data and a model are built (a checkpoint is checked
# against the model): three times the other corpora's bound, for a machine under load.
RUN_TIME_LIMIT_S = 3 * TIME_LIMIT_S
SUBPROCESS_CASES = ("malformed-yaml", "lr-infinite", "pretrained-checkpoint-runs-code")  # also through the real command


def test_corpus_is_large_enough_and_ids_are_unique():
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 25 and len(ids) == len(set(ids))


def by_id(ids: tuple[str, ...]) -> list[dict]:
    return [case for case in CASES if case["id"] in ids]


@pytest.fixture(scope="module")
def imported() -> None:
    """What a run imports (torch, the registries, the lifecycle), loaded before the first case
    is timed: the time bound is on the refusal, not on the interpreter's imports."""
    import sklearn.datasets  # noqa: F401  (the digits)
    import torchvision.transforms.v2  # noqa: F401

    import prunebench.harness.lifecycle  # noqa: F401


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path, monkeypatch, imported):
    """In this process (`prunebench.cli.main`, the command's entry point): milliseconds a case."""
    refused_cleanly(case, tmp_path, monkeypatch, run_main, RUN_TIME_LIMIT_S)


@pytest.mark.slow  # an interpreter start per case
@pytest.mark.parametrize("case", by_id(SUBPROCESS_CASES), ids=SUBPROCESS_CASES)
def test_bad_input_is_refused_cleanly_by_the_command(case, tmp_path, monkeypatch):
    """Through a new interpreter: its start and imports are outside the bound (run_cli's timeout holds)."""
    refused_cleanly(case, tmp_path, monkeypatch, run_cli, float("inf"))


def refused_cleanly(case, tmp_path, monkeypatch, runner, time_limit_s: float) -> None:
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
    before = snapshot(tmp_path)
    start = time.monotonic()
    result = runner(*args, cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert_one_line_error(result, fill(case["expect"]))
    assert snapshot(tmp_path) == before, "bad input left files behind"
    assert not (tmp_path / "PWNED").exists()
    assert elapsed < time_limit_s, f"took {elapsed:.1f} s"
