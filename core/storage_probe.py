"""The first contact with a remote storage (s3://, gs://), run as a child process.

A network call blocked inside pyarrow cannot be interrupted in-process, and keeps even the
interpreter's exit waiting (on the SDK's retries, minutes); a child process can be killed. So
`core.storage.probe_remote` runs this file by path with a time limit before the command
touches the storage itself. It imports only pyarrow, to start in a fraction of a second.

Usage: python storage_probe.py URI EXPERIMENT read|write. Exit 0 when the storage answered
(and, for write, took and deleted a small file under URI/EXPERIMENT); else the error's first
line on stderr and exit 1.
"""

from __future__ import annotations

import posixpath
import sys

import pyarrow.fs

from prunebench.core.errors import first_line

WRITE_TEST_FILE = ".prunebench-write-test"


def probe(uri: str, experiment: str, write: bool) -> None:
    """Read the experiment folder's information; with `write`, also write and delete a file."""
    fs, root = pyarrow.fs.FileSystem.from_uri(uri)
    folder = posixpath.join(root, experiment)
    fs.get_file_info(folder)
    if write:
        fs.create_dir(folder)
        with fs.open_output_stream(posixpath.join(folder, WRITE_TEST_FILE)) as stream:
            stream.write(b"ok")
        fs.delete_file(posixpath.join(folder, WRITE_TEST_FILE))


def main(argv: list[str]) -> int:
    uri, experiment, mode = argv
    try:
        probe(uri, experiment, write=mode == "write")
    except Exception as exc:  # noqa: BLE001 - any failure is the storage's answer, in one line
        print(first_line(exc, exc.__class__.__name__), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
