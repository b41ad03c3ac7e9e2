"""The one exception family of the protocol layer.

Every parse or build failure names the structure, the field and the byte
offset, so that an operator reading a log line knows where in a capture to look.
"""
from __future__ import annotations


class ProtocolError(ValueError):
    """Bad or truncated wire data, or a value that cannot be encoded.

    ``structure``: what was being parsed/built (e.g. "TM transfer frame");
    ``field``: the field path within it ("" if not known);
    ``offset``: byte offset from the start of the buffer handed to the parser (None if not known).
    """

    def __init__(self, structure: str, message: str, *, field: str = "", offset: int | None = None) -> None:
        self.structure = structure
        self.field = field
        self.offset = offset
        self.reason = message
        where = structure
        if field:
            where += f" field {field!r}"
        if offset is not None:
            where += f" at byte {offset}"
        super().__init__(f"{where}: {message}")


class TruncatedError(ProtocolError):
    """The buffer ends before the structure does."""


class ChecksumError(ProtocolError):
    """A CRC / FECF / packet error control did not match."""


class DefinitionError(ValueError):
    """A mission or packet definition is inconsistent (raised at import/registration)."""
