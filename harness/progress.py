"""What a run shows while it trains (rank 0).

Within an epoch: on a terminal, a bar with step / steps, images/s, loss, lr and ETA; elsewhere
(a pipe, a file, a Ray worker's log) a plain line every tenth of the epoch or every
LINE_SECONDS, never a carriage-return frame. After the epoch, one line that says which model
each number is from: the live model's training loss and accuracy, and the hard-pruned
snapshot's validation accuracy, density and MACs (the two differ while a method prunes).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from prunebench.harness.runlog import console

LINE_SECONDS = 30.0  # at most this long between two plain step lines
LINES_PER_EPOCH = 10  # and a line at every tenth of the epoch


def epoch_label(epoch: int, total_epochs: int, phase: str) -> str:
    """What starts every line of an epoch: `epoch   3/10 [prune   ]` (`epoch` counts from 1)."""
    return f"epoch {epoch:>3}/{total_epochs} [{phase:<8}]"


def epoch_line(entry: dict[str, Any], total_epochs: int) -> str:
    """The line of one trail entry (harness.train), each number labelled with its model."""
    compression = entry["compression"] or float("inf")
    return (
        f"{epoch_label(entry['epoch'], total_epochs, entry['phase'])} "
        f"live model: loss {entry['train_loss']:.4f} train top-1 {entry['train_top1']:.3f} | "
        f"hard-pruned: val top-1 {entry['val_top1']:.3f} density {entry['density']:.4f} ({compression:.2f}x) "
        f"MACs {entry['macs'] / 1e6:.2f}M | {entry['seconds']:.1f}s"
    )


class StepProgress:
    """The steps of one epoch, shown as a bar on a terminal and as plain lines elsewhere."""

    def __init__(self, label: str, steps: int, stream: TextIO | None = None) -> None:
        self.label, self.steps = label, steps
        self.stream = stream or sys.stderr  # looked up now: the run log's tee while a run is logged
        self.done = self.images = 0
        self.began = self.last_line = time.perf_counter()
        terminal = console(self.stream)
        self.bar = tqdm(total=steps, desc=label, unit="step", file=terminal, leave=False, dynamic_ncols=True) if terminal.isatty() else None

    def step(self, images: int, loss: float, lr: float) -> None:
        """One optimizer step of `images` images (over all workers) ended with `loss` at `lr`."""
        self.done += 1
        self.images += images
        now = time.perf_counter()
        rate = self.images / max(now - self.began, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{rate:.0f} img/s loss {loss:.4f} lr {lr:.3g}", refresh=False)
            self.bar.update(1)
            return
        due = self.done % max(1, self.steps // LINES_PER_EPOCH) == 0 or now - self.last_line >= LINE_SECONDS
        if due or self.done == self.steps:
            self.last_line = now
            eta = (self.steps - self.done) * (now - self.began) / self.done
            print(f"{self.label} step {self.done}/{self.steps} {rate:.0f} img/s loss {loss:.4f} lr {lr:.3g} "
                  f"eta {tqdm.format_interval(eta)}", file=self.stream, flush=True)  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
