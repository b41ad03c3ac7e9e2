"""docs/missions.md is generated from the definitions and must be current."""
from __future__ import annotations

from pathlib import Path

from protocols.missions import builtin_registry
from protocols.missions.docs import main, render

DOC = Path(__file__).parents[2] / "docs" / "missions.md"


def test_committed_docs_are_current():
    assert DOC.read_text(encoding="utf-8") == render(builtin_registry()), \
        "docs/missions.md is stale: run `python -m protocols.missions.docs --write docs/missions.md`"


def test_check_mode(tmp_path):
    stale = tmp_path / "missions.md"
    stale.write_text("old\n")
    assert main(["--check", str(stale)]) == 1
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0


def test_docs_list_everything():
    text = DOC.read_text(encoding="utf-8")
    reg = builtin_registry()
    for sc in reg:
        assert f"## {sc.name}" in text
        for packet in sc.packets:
            assert packet.name in text
    for info in reg.parameters():
        assert f"`{info.path}`" in text
    assert "relayed through tianwen1" in text and "polynomial:" in text and "critical in" in text
