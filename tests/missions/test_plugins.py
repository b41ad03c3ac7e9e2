"""Users add spacecraft without editing Queqiao: QUEQIAO_MISSION_PATH and `queqiao.missions` entry points."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.errors import DefinitionError
from protocols.missions import PATH_VARIABLE, load_registry

HERE = Path(__file__).parent
DEMOSAT = HERE / "third_party" / "demosat.py"
ROOT = HERE.parents[1]

PROBE = """
import json
from protocols.missions import registry
reg = registry()
sc = reg.spacecraft("demosat")
ping = reg.command(700, "PING").build()
print(json.dumps({"names": reg.names, "scid": sc.scid, "origin": sc.origin,
                  "resolved": reg.resolve("demosat", ping).name,
                  "parameters": len(reg.parameters("demosat"))}))
"""


def run_probe(env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != PATH_VARIABLE}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env_extra.pop("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra)
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mission_file_in_queqiao_mission_path():
    # Empty entries (leading/trailing separators) are tolerated.
    result = run_probe({PATH_VARIABLE: os.pathsep.join(["", str(DEMOSAT), ""])})
    assert result["names"][-1] == "demosat" and "tianwen1" in result["names"]
    assert result["scid"] == 700 and result["origin"] == str(DEMOSAT)
    assert result["resolved"] == "PING" and result["parameters"] > 20


def test_mission_module_name_in_queqiao_mission_path():
    result = run_probe({PATH_VARIABLE: "demosat", "PYTHONPATH": str(DEMOSAT.parent)})
    assert result["origin"] == "demosat"


def test_entry_point(tmp_path):
    (tmp_path / "demosat_plugin.py").write_text(DEMOSAT.read_text())
    dist = tmp_path / "demosat_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demosat-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[queqiao.missions]\ndemosat = demosat_plugin\n")
    result = run_probe({"PYTHONPATH": str(tmp_path)})
    assert result["origin"] == "entry point demosat = demosat_plugin"


def test_load_registry_in_process_and_errors(tmp_path):
    reg = load_registry(entry_points=False, mission_path=str(DEMOSAT))
    assert reg.spacecraft(700).name == "demosat"
    clash = tmp_path / "clash.py"
    clash.write_text(DEMOSAT.read_text().replace("scid=700", "scid=245").replace('"demosat"', '"clash"'))
    with pytest.raises(DefinitionError, match=r"spacecraft 'clash' \(from .*clash.py\): duplicate SCID 245, "
                                              r"already used by 'tianwen1'"):
        load_registry(entry_points=False, mission_path=str(clash))
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(DefinitionError, match=r"empty.py: defines neither SPACECRAFT nor SPACECRAFTS"):
        load_registry(entry_points=False, mission_path=str(empty))
    with pytest.raises(DefinitionError, match=r"does not exist"):
        load_registry(entry_points=False, mission_path=str(tmp_path / "nope.py"))
    with pytest.raises(DefinitionError, match=r"no_such_module: cannot import mission module"):
        load_registry(entry_points=False, mission_path="no_such_module")


def test_readme_example_is_the_tested_file():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\n# demosat.py") + len("```python\n")
    block = readme[start:readme.index("```", start)]
    assert block == DEMOSAT.read_text()
