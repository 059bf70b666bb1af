"""Run files follow the umask, as other tools' files do: a results directory shared with a group
stays readable to it (mkstemp alone would make every file 0600)."""

from __future__ import annotations

import os

from prunebench.core.storage import write_atomic


def test_written_files_follow_the_umask(tmp_path):
    for mask, expected in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
        previous = os.umask(mask)
        try:
            write_atomic(tmp_path / f"result-{mask:o}.json", lambda stream: stream.write(b"{}"))
        finally:
            os.umask(previous)
        assert (tmp_path / f"result-{mask:o}.json").stat().st_mode & 0o777 == expected
