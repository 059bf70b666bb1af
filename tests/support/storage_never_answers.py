"""Stands in for core/storage_probe.py in tests: a remote storage that never answers (the
probe's child process waits until it is killed), without any network."""

import time

time.sleep(600)
