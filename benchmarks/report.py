"""docs/PERFORMANCE.md is written by several benchmarks; each owns a marked section.

A section runs from ``<!-- NAME:begin ... -->`` to ``<!-- NAME:end -->``.  A benchmark
replaces its own section and leaves the others as they are; the fast-path report,
which rewrites the whole file, carries the other sections over.
"""
from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- (?P<name>[\w-]+):begin.*?-->.*?<!-- (?P=name):end -->\n?", re.S)


def sections(text: str) -> dict[str, str]:
    """Every marked section of ``text``, by name, in order."""
    return {m.group("name"): m.group(0) for m in _SECTION.finditer(text)}


def write_section(path: Path, name: str, section: str) -> None:
    """Replace section ``name`` of ``path`` (or append it); the rest of the file is kept."""
    text = path.read_text() if path.exists() else ""
    current = sections(text).get(name)
    section = section.rstrip("\n") + "\n"
    text = text.replace(current, section) if current else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def write_report(path: Path, generated: str) -> None:
    """Write a whole generated report, keeping every marked section the file already had."""
    kept = sections(path.read_text()).values() if path.exists() else []
    kept = [s for s in kept if s not in generated]
    path.write_text("\n".join([generated.rstrip("\n"), "", *[s.rstrip("\n") + "\n" for s in kept]]).rstrip("\n") + "\n")
