"""Where a grid's runs live: a local directory or any URI Ray storage accepts (s3://, gs://, ...).

Each run owns STORAGE/EXPERIMENT/RUN_ID: result.json, config.yaml, model.pt, the W&B mirror
(wandb/) and, while it runs, Ray Train's checkpoints (ray/). Rank 0 writes the run's files into
a local directory (the run directory itself for local storage, a staging directory for URIs,
uploaded afterwards). result.json goes last, because its presence marks a run as done.
"""

from __future__ import annotations

import json
import posixpath
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow.fs

from harness.errors import UserError
from harness.results import RESULT_FILE, STATUS_FINISHED

RAY_DIR = "ray"  # Ray Train's storage for one run: checkpoints and its checkpoint manager's snapshot


def is_uri(path: str) -> bool:
    return "://" in path


def storage_root(path: str) -> str:
    """Local paths become absolute (Ray workers need them); URIs are kept as written."""
    return path.rstrip("/") if is_uri(path) else str(Path(path).expanduser().resolve())


class Storage:
    """The runs of one experiment under a storage path, read and written through pyarrow.fs."""

    def __init__(self, path: str, experiment: str) -> None:
        self.root = storage_root(path)
        self.experiment = experiment
        self.is_local = not is_uri(path)
        try:
            self.fs, fs_root = pyarrow.fs.FileSystem.from_uri(self.root)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, OSError) as exc:
            raise UserError(f"storage_path: {path}: {str(exc).splitlines()[0]}") from None
        self.experiment_path = posixpath.join(fs_root, experiment)

    def run_uri(self, run_id: str) -> str:
        """The run directory as Ray storage takes it (a local path or a URI)."""
        return f"{self.root}/{self.experiment}/{run_id}"

    def ray_storage(self, run_id: str) -> str:
        return f"{self.run_uri(run_id)}/{RAY_DIR}"

    def _path(self, run_id: str, *parts: str) -> str:
        return posixpath.join(self.experiment_path, run_id, *parts)

    def check_writable(self) -> None:
        """Fail before any run starts when results could not be written; leaves nothing behind."""
        try:
            if self.is_local:
                existing = Path(self.root, self.experiment)
                while not existing.exists():
                    existing = existing.parent
                if not existing.is_dir():
                    raise NotADirectoryError(f"{existing} is not a directory")
                tempfile.TemporaryFile(dir=existing).close()
            else:
                probe = posixpath.join(self.experiment_path, ".prunebench-write-test")
                self.fs.create_dir(self.experiment_path)
                with self.fs.open_output_stream(probe) as stream:
                    stream.write(b"ok")
                self.fs.delete_file(probe)
        except OSError as exc:
            reason = (exc.strerror or str(exc) or exc.__class__.__name__).splitlines()[0]
            raise UserError(f"storage_path: cannot write under {self.root}/{self.experiment} ({reason})") from None

    def read_result(self, run_id: str) -> dict[str, Any] | None:
        """The run's record, or None when there is none yet (or it cannot be parsed)."""
        try:
            with self.fs.open_input_stream(self._path(run_id, RESULT_FILE)) as stream:
                return json.loads(stream.read())
        except (OSError, ValueError):
            return None

    def is_finished(self, run_id: str) -> bool:
        record = self.read_result(run_id)
        return record is not None and record.get("status") == STATUS_FINISHED

    def has_checkpoint(self, run_id: str) -> bool:
        return self.fs.get_file_info(self._path(run_id, RAY_DIR)).type == pyarrow.fs.FileType.Directory

    def clear_checkpoints(self, run_id: str) -> None:
        """Drop Ray's checkpoints once the run has its result (like `run_local` does)."""
        if self.has_checkpoint(run_id):
            self.fs.delete_dir(self._path(run_id, RAY_DIR))

    @contextmanager
    def run_files(self, run_id: str) -> Iterator[Path]:
        """A local directory for the run's files; for URIs it is uploaded when the block ends,
        result.json last."""
        if self.is_local:
            path = Path(self._path(run_id))
            path.mkdir(parents=True, exist_ok=True)
            yield path
            return
        staging = Path(tempfile.mkdtemp(prefix=f"{run_id}-"))
        try:
            yield staging
            for path in sorted(staging.rglob("*"), key=lambda path: path.name == RESULT_FILE):  # result.json last
                if path.is_file():
                    target = self._path(run_id, path.relative_to(staging).as_posix())
                    self.fs.create_dir(posixpath.dirname(target))
                    pyarrow.fs.copy_files(str(path), target, destination_filesystem=self.fs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
