"""docs/PERFORMANCE.md sections: each benchmark replaces its own, the whole-file report keeps the others."""
from __future__ import annotations

from benchmarks import report


def test_sections_survive_each_other(tmp_path):
    path = tmp_path / "PERFORMANCE.md"
    report.write_report(path, "# Performance\n\nfast path v1\n")
    report.write_section(path, "ingest", "<!-- ingest:begin (x) -->\ningest v1\n<!-- ingest:end -->")
    report.write_section(path, "emulator", "<!-- emulator:begin -->\nemu v1\n<!-- emulator:end -->")
    report.write_section(path, "ingest", "<!-- ingest:begin (x) -->\ningest v2\n<!-- ingest:end -->")
    report.write_report(path, "# Performance\n\nfast path v2\n")
    text = path.read_text()
    assert "fast path v2" in text and "fast path v1" not in text
    assert "ingest v2" in text and "ingest v1" not in text and "emu v1" in text
    assert text.count("ingest:begin") == 1 and text.count("emulator:begin") == 1
