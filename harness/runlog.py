"""train.log: what a run printed, kept in its run directory (rank 0, also under Ray).

While a run is logged, this process's stdout and stderr are tees: every line goes to the
console as before and into the log. The log is held in memory until the run's set-up has
succeeded (bad input writes nothing), then written into the run's local folder
(`RunDir.staged`: the run directory itself, or for a storage URI a folder uploaded after every
epoch and when the run ends), and appended to from then on. A resumed run appends to the log
of its earlier attempts. Progress bars write to the console only (`console`), so no
carriage-return frame reaches the log. Output of native code and of child processes bypasses
Python's streams and is not kept.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from prunebench.core.storage import LOG_FILE, RunDir


class Tee(io.TextIOBase):
    """A text stream that writes to the console and to the run's log."""

    def __init__(self, console: TextIO, log: "RunLog") -> None:
        self.console, self.log = console, log

    def write(self, text: str) -> int:
        self.console.write(text)
        self.log.sink.write(text)
        return len(text)

    def flush(self) -> None:
        self.console.flush()
        self.log.sink.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.console, "encoding", None) or "utf-8"


def console(stream: TextIO) -> TextIO:
    """The console behind `stream`: where a progress bar's frames go, never into a log."""
    return stream.console if isinstance(stream, Tee) else stream


class RunLog:
    """What this process prints from `capture` on; in memory until `kept_in` gives it its file."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.sink: TextIO = io.StringIO()

    @contextlib.contextmanager
    def kept_in(self, folder: Path, run: RunDir, fresh: bool) -> Iterator[Callable[[Any], None]]:
        """Write what was held so far into FOLDER/train.log and append to it until the block
        ends. `fresh`: a new attempt replaces the old log; otherwise the log continues the run's
        earlier one (found in FOLDER, or in the run's storage). Yields an epoch callback that
        copies the log into a remote storage (with each checkpoint, so that an attempt killed
        on the way leaves its log too). Nothing when the log is off."""
        if not self.enabled:
            yield lambda entry: None
            return
        path = folder / LOG_FILE
        if not fresh and not path.exists():
            path.write_bytes(run.read_bytes(LOG_FILE) or b"")
        held = self.sink.getvalue()
        with open(path, "w" if fresh else "a", encoding="utf-8", errors="replace", buffering=1) as file:
            file.write(held)
            self.sink = file

            def save(entry: Any) -> None:
                if not run.storage.is_local:
                    file.flush()
                    run.write_bytes(LOG_FILE, path.read_bytes())

            try:
                yield save
            finally:
                self.sink = io.StringIO()


@contextlib.contextmanager
def capture(enabled: bool = True) -> Iterator[RunLog]:
    """stdout and stderr teed into a RunLog until the block ends (not when `enabled` is off:
    ranks other than 0 keep no log)."""
    log = RunLog(enabled)
    if not enabled:
        yield log
        return
    with contextlib.redirect_stdout(Tee(sys.stdout, log)), contextlib.redirect_stderr(Tee(sys.stderr, log)):
        yield log
