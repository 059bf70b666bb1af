"""A real S3-compatible server on this machine for tests: moto's server mode, started as a user
starts it (`python -m moto.server`), bound to loopback on a port the kernel picks, and stopped
by its process handle. Clients reach it through the standard AWS variables, with fake
credentials and every other source of AWS settings switched off, so nothing leaves the machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import pyarrow.fs

START_TIMEOUT_S = 60.0
BUCKET = "prunebench"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT

    def env(self) -> dict[str, str]:
        """What a user exports to point prunebench (and its Ray workers) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def filesystem(self) -> pyarrow.fs.S3FileSystem:
        """The test's own view of the server, for checking what the commands left there."""
        return pyarrow.fs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                                       endpoint_override=self.endpoint, allow_bucket_creation=True)  # fmt: skip


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server with an empty bucket BUCKET; stopped (only it) afterwards. Its log (a
    line per request) goes to a temporary file, which also gives the port it listens on."""
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                   stdout=log, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            server = S3Server(_announced_endpoint(process, log))
            server.filesystem().create_dir(BUCKET)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _announced_endpoint(process: subprocess.Popen, log: IO[str]) -> str:
    """The address the server prints once it listens ('Running on http://127.0.0.1:PORT')."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        log.seek(0)
        match = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read())
        if match:
            return match.group(1)
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"moto server did not start (exit status {process.poll()}): {log.read()[-2000:]}")
