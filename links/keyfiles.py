"""SDLS key files on disk, shared by both programs: the ground and the emulator read the same files.

A key file is secret: it is read only when no one but its owner and group can read it (mode
0600 or 0640; anything readable by others is refused with the fix in the message), and new ones
are created with mode 0600.  The format is :func:`protocols.ccsds.sdls.parse_key_file`'s.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from protocols.ccsds.sdls import ALGORITHMS, KeyFile, SecurityAssociation, key_file_text, parse_key_file


class KeyFileError(ValueError):
    """A key file that cannot be used (missing, readable by others, malformed)."""


def read_key_file(path: str | os.PathLike, spacecraft: str | None = None) -> KeyFile:
    """The key file at ``path``; with ``spacecraft``, it must hold that spacecraft's keys."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & (stat.S_IROTH | stat.S_IWOTH):
                raise KeyFileError(f"SDLS key file {path} is readable or writable by others (mode "
                                   f"{stat.S_IMODE(mode):04o}); refusing it: chmod 0600 {path} (or 0640 with a "
                                   "group that may read it), and treat its keys as disclosed")
            if mode & stat.S_IWGRP:
                raise KeyFileError(f"SDLS key file {path} is writable by its group (mode {stat.S_IMODE(mode):04o}); "
                                   f"refusing it: chmod 0600 {path} or 0640")
            text = f.read()
    except OSError as exc:
        raise KeyFileError(f"SDLS key file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"SDLS key file {path}: not UTF-8 text") from None
    try:
        keys = parse_key_file(text, str(path))
    except ValueError as exc:
        raise KeyFileError(str(exc)) from None
    if spacecraft is not None and keys.spacecraft != spacecraft:
        raise KeyFileError(f"SDLS key file {path} is for {keys.spacecraft!r}, not {spacecraft!r}")
    return keys


def new_associations(spis: dict[int, str]) -> list[SecurityAssociation]:
    """Fresh random keys for ``{spi: algorithm name}``."""
    return [SecurityAssociation(spi, ALGORITHMS[name], secrets.token_bytes(ALGORITHMS[name].key_length))
            for spi, name in spis.items()]


def write_key_file(path: str | os.PathLike, spacecraft: str, associations: list[SecurityAssociation]) -> Path:
    """Create ``path`` (mode 0600; an existing file is not overwritten) holding ``associations``."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key_file_text(spacecraft, associations))
    return path
