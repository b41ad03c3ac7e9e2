"""A real, small tmpfs for disk-full tests: mounted by the test (as root), always unmounted.

Not root: under CI=true that is a failure (the disk-full guarantees must be tested there),
elsewhere a skip that says how to run the tests.
"""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@contextlib.contextmanager
def small_tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (e.g. "4m") on ``mountpoint`` for the duration of the block."""
    if os.geteuid() != 0:
        message = "mounting a tmpfs for the disk-full tests needs root (run pytest as root)"
        if in_ci():
            pytest.fail(f"CI=true and not root: {message}", pytrace=False)
        pytest.skip(message)
    mountpoint.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs on {mountpoint}: {proc.stderr.strip()}", pytrace=False)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], capture_output=True, timeout=30, check=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file until the filesystem is full (ENOSPC); returns it, for :func:`Path.unlink` to free the space."""
    path = directory / name
    block = b"\xa5" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                if f.write(block) < len(block):
                    continue  # the last partial block: the next write fails
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return path
