"""Log lines that outside input cannot forge or flood.

Anything a client, a link or a spacecraft sends may end up in a log line: a
command name, a header, a token's owner, a decoded string.  A newline in it
would start a line that looks like the daemon's own, an escape sequence would
drive the operator's terminal, and a megabyte of it would fill the disk.
:func:`escape` is the one helper that makes such text safe (control
characters, line and paragraph separators and lone surrogates become visible
escapes; length is capped); :class:`EscapingFilter` applies it to every record
the daemon's handler writes, so even a line whose author forgot still comes
out as one bounded line.  Tracebacks (our own code's) are left as they are.
"""
from __future__ import annotations

import logging
import re

#: The longest message (after escaping) a log line carries; the rest is cut and counted.
MAX_MESSAGE = 2000

# C0 and C1 controls, DEL, Unicode line/paragraph separators, bidi overrides and lone surrogates
# (undecodable header bytes arrive as surrogates through surrogateescape).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(value: object, limit: int = MAX_MESSAGE) -> str:
    """``value`` as one printable line of at most about ``limit`` characters.

    Bytes are shown with Python's escapes (``b'\\xff'`` stays readable); text
    keeps its printable characters and shows the rest as ``\\xNN``/``\\uNNNN``.
    """
    text = repr(value) if isinstance(value, (bytes, bytearray)) else str(value)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    text = _UNSAFE.sub(_visible, text)
    return f"{text}... ({cut} more characters)" if cut > 0 else text


class EscapingFilter(logging.Filter):
    """A handler filter: the record's rendered message, escaped (one bounded line per record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = escape(message), None
        return True


def install(handlers: list[logging.Handler] | None = None) -> None:
    """Put an :class:`EscapingFilter` on ``handlers`` (default: the root logger's), once each."""
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        if not any(isinstance(f, EscapingFilter) for f in handler.filters):
            handler.addFilter(EscapingFilter())
