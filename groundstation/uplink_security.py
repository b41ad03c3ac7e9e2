"""The sending end of SDLS (CCSDS 355.0-B-2): TC frames secured with the spacecraft's security association.

Sequence numbers are written to disk before the frame that carries one is sent, so a
restart never reuses one: the spacecraft would refuse the frame as a replay, and with
AES-GCM a repeated sequence number would repeat an IV under the same key.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from links.keyfiles import KeyFileError, read_key_file
from protocols.ccsds.sdls import SecurityAssociation, apply_security
from protocols.ccsds.tcframe import TcFrame, TcProfile

log = logging.getLogger("queqiao.commanding.sdls")


class UplinkSecurityError(ValueError):
    """Uplink security that cannot start (key file, sequence file); the message says which and why."""


class SequenceStore:
    """The last SDLS sequence number used on one SA, persisted (write, fsync, rename) before each use."""

    def __init__(self, path: Path, spacecraft: str, spi: int, maximum: int) -> None:
        self.path, self.spacecraft, self.spi, self.maximum = path, spacecraft, spi, maximum
        self.last = self._load()

    def _load(self) -> int:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise UplinkSecurityError(f"SDLS sequence file {self.path}: unreadable ({exc}); it must not be guessed "
                                      "(a reused number is refused as a replay): restore it, or start a new SA "
                                      "with a new key") from None
        last = doc.get("last_sequence_number") if isinstance(doc, dict) else None
        if not isinstance(last, int) or not 0 <= last <= self.maximum or doc.get("spi") != self.spi:
            raise UplinkSecurityError(f"SDLS sequence file {self.path}: not the state of {self.spacecraft} SPI "
                                      f"{self.spi} (expected last_sequence_number 0..{self.maximum})")
        return last

    def next(self) -> int:
        number = self.last + 1
        if number > self.maximum:
            raise UplinkSecurityError(f"{self.spacecraft} SPI {self.spi}: sequence numbers used up; a new SA is due")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"spacecraft": self.spacecraft, "spi": self.spi, "last_sequence_number": number}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.last = number
        return number


class FrameSecurity:
    """Secures every TC frame of one spacecraft with one SA and fresh sequence numbers."""

    def __init__(self, association: SecurityAssociation, sequence: SequenceStore) -> None:
        self.association = association
        self.sequence = sequence

    def secure(self, frame: TcFrame, profile: TcProfile) -> bytes:
        return apply_security(frame, self.association, self.sequence.next(), profile)

    @classmethod
    def open(cls, spacecraft: str, key_file: Path, spi: int | None, state_dir: Path) -> FrameSecurity:
        """The SA ``spi`` of ``key_file`` (the file's only SA without one), with its sequence file in ``state_dir``."""
        try:
            keys = read_key_file(key_file, spacecraft)
        except KeyFileError as exc:
            raise UplinkSecurityError(str(exc)) from None
        try:
            sa = keys.association(spi)
        except KeyError as exc:
            raise UplinkSecurityError(f"SDLS key file {key_file}: {exc.args[0]}") from None
        store = SequenceStore(state_dir / f"sdls-{spacecraft}-spi{sa.spi}.json", spacecraft, sa.spi,
                              sa.max_sequence_number)
        log.info("%s uplink secured: SPI %d, %s, next sequence number %d", spacecraft, sa.spi, sa.algorithm.name,
                 store.last + 1)
        return cls(sa, store)
