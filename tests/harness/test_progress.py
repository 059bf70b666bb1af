"""What a run prints while it trains, and its train.log: a bar on a terminal, plain step lines in
a pipe (no carriage returns), epoch lines that name their model, the log in the run directory
(also under a storage URI), continued by a resumed run."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.cli import REPO

from prunebench.core.storage import LOG_FILE, Storage
from prunebench.harness import progress, runlog
from prunebench.harness.progress import StepProgress

TINY = ("--set", "threads=1", "--set", "model.name=lenet_300_100", "--set", "data.layout=flat",
        "--set", "phases={dense: 1, prune: 1, finetune: 1}", "--set", "latency.enabled=false", "--set", "wandb=disabled")  # fmt: skip
STEP_LINE = re.compile(r"^epoch +\d+/3 \[(dense|prune|finetune) *\] step (\d+)/(\d+) \d+ img/s loss \d+\.\d{4} lr \S+ eta \d\d:\d\d$")
EPOCH_LINE = re.compile(r"^epoch +\d+/3 \[\w+ *\] live model: loss \S+ train top-1 \S+ \| hard-pruned: val top-1 \S+ density \S+ \(\S+x\) MACs \S+M \| \S+s$")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_rate_loss_lr_and_eta() -> None:
    screen = Terminal()
    steps = StepProgress("epoch   1/3 [dense   ]", 3, stream=screen)
    for _ in range(3):
        time.sleep(0.15)  # past tqdm's least interval between two frames
        steps.step(64, 0.5, 0.1)
    steps.close()
    frames = screen.getvalue()
    assert frames.startswith("\r") and "2/3 [00:00<00:00" in frames and "img/s loss 0.5000 lr 0.1" in frames


def test_elsewhere_a_plain_line_every_tenth_of_the_epoch_or_30_s(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    steps = StepProgress("epoch   1/3 [dense   ]", 100, stream=out)
    for _ in range(100):
        steps.step(64, 0.5, 0.1)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and [line.split()[5] for line in lines] == [f"{10 * k}/100" for k in range(1, 11)]

    clock = iter(range(0, 10_000, 31))  # 31 s per step: a line at every step, long before a tenth of the epoch
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    steps = StepProgress("epoch   1/3 [dense   ]", 1000, stream=out)
    for _ in range(3):
        steps.step(64, 0.5, 0.1)
    assert [line.split()[5] for line in out.getvalue().splitlines()] == ["1/1000", "2/1000", "3/1000"]


def test_a_run_in_a_pipe_prints_step_lines_and_leaves_its_train_log(tmp_path: Path) -> None:
    """`prunebench run CONFIG 2>&1 | cat`: step lines and labelled epoch lines, no carriage return,
    and train.log in the run directory holding everything the run printed before its last line."""
    command = [sys.executable, "-m", "prunebench", "run", str(REPO / "configs/smoke/global.yaml"), "--storage-path", str(tmp_path / "runs"), *TINY]
    shell = " ".join(f"'{part}'" for part in command) + " 2>&1 | cat"
    done = subprocess.run(shell, shell=True, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "\r" not in done.stdout
    printed = done.stdout.splitlines()
    steps = [match for line in printed if (match := STEP_LINE.match(line))]
    assert {match[1] for match in steps} == {"dense", "prune", "finetune"}
    last = {match[1]: match for match in steps}
    assert all(match[2] == match[3] for match in last.values()), "each epoch ends with its last step's line"
    assert sum(bool(EPOCH_LINE.match(line)) for line in printed) == 3

    (run_dir,) = (tmp_path / "runs" / "smoke").iterdir()
    log = (run_dir / LOG_FILE).read_text()
    assert "\r" not in log
    assert log.splitlines() == printed[:-1], "train.log holds what the run printed (the command's own last line aside)"
    assert printed[-1].startswith(run_dir.name) and printed[-1].endswith("result.json")


def test_the_log_reaches_a_storage_uri_and_a_resumed_run_continues_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The log of a run stored under a URI is written in a local folder and uploaded with it; a
    resumed attempt appends to the log already in the storage, a fresh one replaces it."""
    run = Storage(f"file://{tmp_path}/store").run("exp", "run-1")
    run.write_bytes(LOG_FILE, b"attempt 1\n")
    for fresh, expected in ((False, "attempt 1\nset-up\nattempt 2\n"), (True, "set-up\nattempt 3\n")):
        with runlog.capture() as log:
            print("set-up")  # held in memory until the run directory has its log
            with run.staged() as local, log.kept_in(local, run, fresh=fresh):
                print(f"attempt {2 if not fresh else 3}", file=sys.stderr)
        assert run.read_bytes(LOG_FILE).decode() == expected
    assert capsys.readouterr().err.count("attempt") == 2, "the console still sees every line"


