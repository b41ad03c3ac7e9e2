"""Where a key is in a TOML text: dotted key paths to line numbers, for error messages.

tomllib keeps no positions, and tomlkit none that map to lines; this small locator reads
the text line by line.  Paths are written as groundstation.config names keys in errors:
``links[2].url`` (array-of-tables elements numbered from 0), ``limits.zhurong."x.y"``
(keys that are not bare TOML keys quoted).
"""
import re
from collections.abc import Mapping

__all__ = ["format_key", "line_of", "locate_keys"]


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def format_key(part: str) -> str:
    return part if _BARE.fullmatch(part) else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_key(text: str) -> tuple[list[str], int] | None:
    """Parse a (dotted, maybe quoted) TOML key at the start of ``text``: (parts, end)."""
    parts: list[str] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] in "\"'":
            quote = text[pos]
            end = text.find(quote, pos + 1)
            if end < 0:
                return None
            raw = text[pos + 1 : end]
            parts.append(raw.encode().decode("unicode_escape") if quote == '"' and "\\" in raw else raw)
            pos = end + 1
        else:
            m = _BARE.match(text, pos)
            if not m:
                return None
            parts.append(m.group())
            pos = m.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ".":
            pos += 1
            continue
        return parts, pos


def locate_keys(text: str) -> dict[str, int]:
    """Dotted key path -> line number, found by reading the TOML text line by line.

    Not a TOML parser: good enough to point at tables, array-of-tables elements and
    ``key = value`` lines, which is where errors are.
    """
    where: dict[str, int] = {}
    counts: dict[str, int] = {}
    current = ""
    in_multiline: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if in_multiline:
            if in_multiline in s:
                in_multiline = None
            continue
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            array = s.startswith("[[")
            parsed = _split_key(s[2 if array else 1 :])
            if not parsed:
                continue
            path = ""
            for i, part in enumerate(parsed[0]):
                path = f"{path}.{format_key(part)}" if path else format_key(part)
                last = i == len(parsed[0]) - 1
                if array and last:
                    counts[path] = counts.get(path, 0) + 1
                    path = f"{path}[{counts[path] - 1}]"
                elif path in counts:
                    path = f"{path}[{counts[path] - 1}]"
            current = path
            where.setdefault(current, lineno)
            continue
        parsed = _split_key(s)
        if not parsed or parsed[1] >= len(s) or s[parsed[1]] != "=":
            continue
        key = ".".join(format_key(p) for p in parsed[0])
        where.setdefault(f"{current}.{key}" if current else key, lineno)
        rest = s[parsed[1] + 1 :]
        for quote in ('"""', "'''"):
            if rest.count(quote) == 1:
                in_multiline = quote
    return where


def line_of(where: Mapping[str, int], key: str) -> int | None:
    """The line of ``key``, or of the nearest enclosing table the file names."""
    probe = key
    while probe:
        if probe in where:
            return where[probe]
        # A table only ever named as a prefix ([limits.sc.param] for limits.sc): its first mention.
        inner = [n for k, n in where.items() if k.startswith((probe + ".", probe + "["))]
        if inner:
            return min(inner)
        # links[2].url -> links[2] -> links ; a.b[3] -> a.b
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return None


