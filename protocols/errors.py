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


def require(structure: str, buffer_length: int, offset: int, needed: int, *, field: str = "") -> None:
    """Raise :class:`TruncatedError` unless ``needed`` octets exist at ``offset``.

    The protocol helpers check lengths before they read so that a truncated
    buffer is reported with the exact offset at which the structure starts
    falling short, not as a construct stream error.
    """
    if offset < 0 or buffer_length - offset < needed:
        have = max(0, buffer_length - offset)
        raise TruncatedError(
            structure, f"needs {needed} octets, only {have} left", field=field, offset=offset + have if offset >= 0 else offset
        )


def from_construct(structure: str, error: Exception, *, offset: int | None = None) -> ProtocolError:
    """Translate a construct exception into a :class:`ProtocolError` naming the field.

    construct reports the field as a path such as ``"(parsing) -> primary -> apid"``;
    that path (without the action prefix) becomes ``field``.  Stream errors
    mean the buffer was too short, so they become :class:`TruncatedError`.
    """
    path = getattr(error, "path", None) or ""
    parts = [p.strip() for p in str(path).split("->")]
    parts = [p for p in parts if p and not p.startswith("(")]
    field = ".".join(parts)
    message = str(error)
    if "\n" in message:  # construct puts the path on the first line, the reason on the next
        message = message.split("\n", 1)[1].strip() or message
    kind = TruncatedError if type(error).__name__ in {"StreamError", "TerminatedError"} else ProtocolError
    return kind(structure, message, field=field, offset=offset)


def parse_with(structure: str, con, data, *, offset: int = 0, **context):
    """``con.parse(data[offset:])`` with construct errors turned into :class:`ProtocolError`.

    The error's offset is where construct's stream stood when the field failed (for a
    truncated buffer: where the data ran out), counted from the start of ``data``.
    """
    import io

    import construct as cs  # local: errors.py stays importable without construct

    stream = io.BytesIO(bytes(data[offset:]))
    try:
        return con.parse_stream(stream, **context)
    except ProtocolError as exc:
        if exc.offset is not None and offset:
            exc.offset += offset
            exc.args = (f"{exc.structure}{f' field {exc.field!r}' if exc.field else ''} at byte {exc.offset}: "
                        f"{exc.reason}",)
        raise
    except cs.ConstructError as exc:
        raise from_construct(structure, exc, offset=offset + stream.tell()) from exc


def build_with(structure: str, con, obj, **context) -> bytes:
    """``con.build(obj)`` with construct errors turned into :class:`ProtocolError`."""
    import construct as cs

    try:
        return con.build(obj, **context)
    except ProtocolError:
        raise
    except cs.ConstructError as exc:
        raise from_construct(structure, exc) from exc
