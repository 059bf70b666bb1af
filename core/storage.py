"""Where runs live, and the one owner of a run directory's file names.

A storage path is a local directory or a URI pyarrow reaches (s3://, gs://, file://). Each run
owns STORAGE/EXPERIMENT/RUN_ID: result.json (its presence marks the run as ended), config.yaml,
model.pt, checkpoint.pt while it runs, error.log when it broke, train.log (what it printed), and
the W&B mirror (wandb/, W&B's own name).
Every file is written atomically: a reader sees the old content or the whole new one (train.log
and the W&B mirror, which grow while the run runs, aside).

Result files are read with limits (a small regular file, JSON within bounds) because anyone
can put one in a results tree; a remote storage must answer a first contact within
REMOTE_TIMEOUT_S (probe_remote), so that a bucket behind a dead network or a credential lookup
fails in seconds instead of hanging.
"""

from __future__ import annotations

import io
import json
import math
import os
import posixpath
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import pyarrow
import pyarrow.fs

from prunebench.core.errors import UserError, error_line, first_line
from prunebench.core.record import STATUS_FINISHED, ResultRecord
from prunebench.core.text import printable_json

RESULT_FILE = "result.json"
CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
ERROR_FILE = "error.log"
LOG_FILE = "train.log"  # what the run printed (harness.runlog)
RUN_FILES = (RESULT_FILE, CONFIG_FILE, MODEL_FILE, CHECKPOINT_FILE, ERROR_FILE, LOG_FILE)

# A result.json is a few KiB (a long trail and many layers: well under 1 MiB); larger files,
# deeper nesting and longer integers are not records, and reading them could exhaust memory
# or the stack.
MAX_RECORD_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 20  # a 64-bit count has at most 20
# Seconds a remote storage (s3://, gs://) has to answer its first contact before the command
# gives up, and the script that makes that contact in a child process.
REMOTE_TIMEOUT_S = 5.0
UPLOAD_CHUNK = 16 * 2**20  # bytes per write into an object stream
PROBE_SCRIPT = Path(__file__).with_name("storage_probe.py")


class UnreadableResult(ValueError):
    """A result file that is no record: not a small regular file, or not JSON within the limits.
    The message names the field where there is one, in a few words."""


def is_uri(path: str) -> bool:
    return "://" in path


def storage_root(path: str) -> str:
    """Local paths become absolute (Ray workers need them); URIs are kept as written."""
    if not is_uri(path):
        try:
            return str(Path(path).expanduser().resolve())
        except (RuntimeError, OSError) as exc:  # ~nosuchuser, a symlink loop
            raise UserError(f"storage_path: {path}: {first_line(exc, 'cannot be resolved')}") from None
    base, mark, query = path.partition("?")
    return base.rstrip("/") + mark + query


def join_uri(root: str, *parts: str) -> str:
    """ROOT/PART/...: a URI's options (`?endpoint_override=...`) stay at its end."""
    base, mark, query = root.partition("?")
    return "/".join([base, *(part for part in parts if part)]) + mark + query


Writer = Callable[[BinaryIO], Any]  # writes a file's whole content into the stream it is given


def current_umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Writer) -> None:
    """Write so that `path` holds either the old content or the complete new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~current_umask())  # mkstemp's 0600 would hide a shared store from the group
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


@dataclass(frozen=True)
class _LongInteger:
    """An integer literal longer than MAX_INT_DIGITS, kept unconverted until its field is known."""

    digits: int


def _integer(text: str) -> int | _LongInteger:
    if len(text) <= MAX_INT_DIGITS:  # the common case, sign or not
        return int(text)
    digits = len(text.lstrip("-"))
    return _LongInteger(digits) if digits > MAX_INT_DIGITS else int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is refused (which value counts would be the reader's guess)."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise UnreadableResult(f"duplicate key {key!r}")
        value[key] = item
    return value


# What a good record's values are, besides floats and the containers they sit in.
_PLAIN = frozenset({str, int, bool, type(None)})
_KNOWN = _PLAIN | {float, dict, list}


def _within_limits(value: Any) -> bool:
    """check_json's test without naming anything: a loop over the containers, their values
    checked a container at a time and no path built, so that a good record (hundreds of
    numbers) costs little. False sends the value to the walk that names the field."""
    if type(value) is not dict and type(value) is not list:
        return type(value) in _PLAIN or (type(value) is float and math.isfinite(value))
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        values = item.values() if type(item) is dict else item
        kinds = set(map(type, values))
        if kinds and depth >= MAX_JSON_DEPTH:  # its values lie deeper than the limit
            return False
        if kinds <= _PLAIN:
            continue
        if not kinds <= _KNOWN:  # a long integer, or a subclass (from W&B)
            return False
        if float in kinds and not all(math.isfinite(child) for child in values if type(child) is float):
            return False
        stack.extend((child, depth + 1) for child in values if type(child) is dict or type(child) is list)
    return True


def check_json(value: Any) -> None:
    """Every number finite and of bounded length, nesting at most MAX_JSON_DEPTH deep: what a
    record holds, however it was read (a file, W&B); raises UnreadableResult naming the field."""
    if not _within_limits(value):
        _check_fields(value)


def _check_fields(value: Any, path: tuple[str, ...] = ()) -> None:
    """check_json's walk that names the first field outside the limits."""
    field = ".".join(path) or "record"
    if len(path) > MAX_JSON_DEPTH:
        raise UnreadableResult(f"{path[0]}: nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, _LongInteger):
        raise UnreadableResult(f"{field}: a number of {value.digits} digits (at most {MAX_INT_DIGITS})")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnreadableResult(f"{field} is not a finite number")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _check_fields(item, (*path, str(key)))


def parse_result(data: bytes, make_printable: bool = False) -> Any:
    """The JSON of a result file, parsed with limits; raises UnreadableResult. With
    `make_printable`, every string in it made printable (core.text), for a reader that shows it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableResult("not UTF-8 text") from None
    try:
        value = json.loads(text, parse_int=_integer, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise UnreadableResult(f"not valid JSON (line {exc.lineno})") from None
    except RecursionError:
        raise UnreadableResult(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_json(value)
    return printable_json(value, text) if make_printable else value


def read_result_file(path: Path, make_printable: bool = False) -> Any:
    """A local result file, parsed with limits: only a regular file of at most MAX_RECORD_BYTES
    (a named pipe would block the reader, a device like /dev/zero never end). Raises
    UnreadableResult, or OSError when the file cannot be opened."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a pipe must not wait for a writer
    with os.fdopen(descriptor, "rb") as stream:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableResult("not a regular file")
        data = stream.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise UnreadableResult(f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
    return parse_result(data, make_printable)


def probe_remote(path: str, experiment: str = "", write: bool = False) -> None:
    """A storage URI must answer within REMOTE_TIMEOUT_S (and, with `write`, take a file under
    PATH/EXPERIMENT): checked in a child process (core/storage_probe.py) that is killed when
    it does not answer, before this process makes any call that could hang on it (opening an
    s3:// filesystem without a region already asks the network). A local path is not probed.
    Raises a UserError naming storage_path."""
    if not is_uri(path):
        return
    uri = storage_root(path)
    where = join_uri(uri, experiment)
    command = [sys.executable, "-I", str(PROBE_SCRIPT), uri, experiment, "write" if write else "read"]
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=REMOTE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"storage_path: {uri}: no answer within {REMOTE_TIMEOUT_S:g} s (network, bucket or credentials?)") from None
    if completed.returncode != 0:
        reason = (completed.stderr.strip().splitlines() or [f"exit status {completed.returncode}"])[-1]
        raise UserError(f"storage_path: cannot {'write under' if write else 'read'} {where} ({reason})")


class Storage:
    """A storage path, read and written through pyarrow.fs."""

    def __init__(self, path: str) -> None:
        """Opens the filesystem; for a URI that may ask the network, so planners call
        probe_remote first."""
        self.is_local = not is_uri(path)
        try:
            self.root = storage_root(path)
            self.fs, self.fs_root = pyarrow.fs.FileSystem.from_uri(self.root)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, OSError, ValueError) as exc:
            raise UserError(f"storage_path: {path}: {first_line(exc, exc.__class__.__name__)}") from None

    def run(self, experiment: str, run_id: str) -> "RunDir":
        return RunDir(self, experiment, run_id)

    def uri(self, *parts: str) -> str:
        """A path under the storage as a user names it: a local path, or a URI with its options."""
        return join_uri(self.root, *parts)

    def files(self, *parts: str) -> list[str]:
        """The filesystem paths of every file under the storage (or under PARTS of it), sorted."""
        selector = pyarrow.fs.FileSelector(posixpath.join(self.fs_root, *parts), recursive=True, allow_not_found=True)
        return sorted(info.path for info in self.fs.get_file_info(selector) if info.type == pyarrow.fs.FileType.File)

    def result_files(self) -> list[str]:
        """Every result.json under the storage (for reading a whole store: the leaderboard of a bucket)."""
        return [path for path in self.files() if posixpath.basename(path) == RESULT_FILE]

    def read_result_at(self, fs_path: str, make_printable: bool = False) -> Any:
        """A result file of this storage, parsed with limits (parse_result) and only when it is a
        file of at most MAX_RECORD_BYTES; raises UnreadableResult, or OSError when it cannot
        be read."""
        info = self.fs.get_file_info(fs_path)
        if info.type != pyarrow.fs.FileType.File:
            raise UnreadableResult("not a regular file")
        if (info.size or 0) > MAX_RECORD_BYTES:
            raise UnreadableResult(f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
        with self.fs.open_input_stream(fs_path) as stream:
            return parse_result(stream.read(MAX_RECORD_BYTES + 1), make_printable)

    def write_bytes(self, relative: str, data: bytes) -> None:
        """ROOT/RELATIVE (a POSIX path) written whole: atomically in a directory, as one object
        under a URI (an object appears whole)."""
        self.write_with(relative, lambda stream: stream.write(data))

    def write_with(self, relative: str, write: Writer) -> None:
        """ROOT/RELATIVE written whole by `write` into a file, never into memory: a checkpoint of a
        large model is GBs with its optimizer state. In a directory the file is the temporary one
        that replaces ROOT/RELATIVE (write_atomic); under a URI it is a local temporary file,
        uploaded as one object once `write` has finished, so a write that breaks leaves no object."""
        fs_path = posixpath.join(self.fs_root, relative)
        if self.is_local:
            write_atomic(Path(fs_path), write)
            return
        with tempfile.TemporaryFile() as staged:
            write(staged)
            staged.seek(0)
            self.fs.create_dir(posixpath.dirname(fs_path))
            with self.fs.open_output_stream(fs_path) as stream:
                shutil.copyfileobj(staged, stream, UPLOAD_CHUNK)

    def check_writable(self, experiment: str) -> None:
        """Fail before any run starts when results could not be written; leaves nothing behind."""
        if not self.is_local:
            probe_remote(self.root, experiment, write=True)
            return
        try:
            existing = Path(self.root, experiment)
            while not existing.exists():
                existing = existing.parent
            if not existing.is_dir():
                raise NotADirectoryError(f"{existing} is not a directory")
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as exc:
            reason = exc.strerror or first_line(exc, exc.__class__.__name__)
            raise UserError(f"storage_path: cannot write under {self.root}/{experiment} ({reason})") from None


class RunDir:
    """The files of one run under a storage path."""

    def __init__(self, storage: Storage, experiment: str, run_id: str) -> None:
        self.storage, self.experiment, self.run_id = storage, experiment, run_id
        self.fs_path = posixpath.join(storage.fs_root, experiment, run_id)

    @property
    def uri(self) -> str:
        """The run directory as a user (or Ray storage) names it: a local path or a URI."""
        return self.storage.uri(self.experiment, self.run_id)

    def file_uri(self, name: str) -> str:
        """One of the run's files as a user names it."""
        return self.storage.uri(self.experiment, self.run_id, name)

    def local_path(self, name: str = "") -> Path | None:
        return Path(self.fs_path, name) if self.storage.is_local else None

    def _file(self, name: str) -> str:
        return posixpath.join(self.fs_path, name)

    def write_bytes(self, name: str, data: bytes) -> None:
        self.storage.write_bytes(posixpath.join(self.experiment, self.run_id, name), data)

    def write_torch(self, name: str, payload: Any) -> None:
        """`payload` saved with torch.save, streamed into the file (Storage.write_with)."""
        import torch  # here, not at the top: reading records (the leaderboard) needs no torch

        self.storage.write_with(posixpath.join(self.experiment, self.run_id, name), lambda stream: torch.save(payload, stream))

    def read_bytes(self, name: str) -> bytes | None:
        if not self.exists(name):
            return None
        with self.storage.fs.open_input_stream(self._file(name)) as stream:
            return stream.read()

    def exists(self, name: str) -> bool:
        return self.storage.fs.get_file_info(self._file(name)).type == pyarrow.fs.FileType.File

    def check_files_writable(self) -> None:
        """Refuse a run directory where one of the run's files exists as something other than a
        file (a directory named result.json): found before training, not when the result is lost."""
        for name in RUN_FILES:
            try:
                kind = self.storage.fs.get_file_info(self._file(name)).type
            except OSError as exc:
                raise UserError(f"{self.file_uri(name)}: cannot be checked ({error_line(exc)})") from None
            if kind not in (pyarrow.fs.FileType.NotFound, pyarrow.fs.FileType.File):
                raise UserError(f"{self.file_uri(name)}: exists and is not a file; remove it or choose another --out")

    def delete(self, name: str) -> None:
        if self.exists(name):
            self.storage.fs.delete_file(self._file(name))

    def load_torch(self, name: str) -> Any | None:
        """A torch file as data only (weights_only): a file that would run code is refused."""
        import torch

        data = self.read_bytes(name)
        return None if data is None else torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def write_record(self, record: ResultRecord) -> None:
        """result.json; its presence marks the run as ended."""
        self.write_bytes(RESULT_FILE, json_bytes(record.model_dump(mode="json")))

    def read_result(self) -> dict[str, Any] | None:
        """The run's record as raw JSON, or None when there is none yet (or it is no record:
        too large, or not JSON within the limits of parse_result)."""
        try:
            return self.storage.read_result_at(self._file(RESULT_FILE))
        except (OSError, ValueError):
            return None

    def is_finished(self) -> bool:
        record = self.read_result()
        return isinstance(record, dict) and record.get("status") == STATUS_FINISHED

    @contextmanager
    def staged(self) -> Iterator[Path]:
        """A local folder standing for the run directory, for files other programs write (the
        W&B mirror): the run directory itself, or for URIs a staging folder uploaded when the
        block ends."""
        if self.storage.is_local:
            path = Path(self.fs_path)
            path.mkdir(parents=True, exist_ok=True)
            yield path
            return
        staging = Path(tempfile.mkdtemp(prefix=f"{self.run_id}-"))
        try:
            yield staging
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    target = self._file(path.relative_to(staging).as_posix())
                    self.storage.fs.create_dir(posixpath.dirname(target))
                    pyarrow.fs.copy_files(str(path), target, destination_filesystem=self.storage.fs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
