"""deploy/grafana: provisioning and dashboards are current, complete and match the metric contract.

The dashboards are generated from the mission database (groundstation.dashboards); these
tests regenerate them in a temporary directory and compare with what is committed, check
that every housekeeping parameter has a panel with its unit and its own limits, and that
every query uses only metric names and labels the daemon exports.  Whether the queries
return data from a real daemon is test_grafana_queries.py's business.
"""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY, REPO

from groundstation import dashboards
from groundstation.metrics import LATENCY_NAME, SPECS
from protocols.missions import builtin_registry, load_registry
from protocols.parameters import Limits, StateLimits, States

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
TARGET_LABELS = {"job", "instance"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> list[dict]:
    """Every panel, rows' nested panels (collapsed rows) included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


def expressions(dashboard: dict) -> list[tuple[str, str]]:
    return [(p.get("title", ""), t["expr"]) for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


@pytest.fixture(scope="module")
def committed() -> dict[str, dict]:
    return {p.name: _load(p) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_committed_dashboards_are_current(tmp_path):
    """Regenerate into a temporary directory: the committed files must be byte for byte the same."""
    assert dashboards.main(["--write", str(tmp_path)]) == 0
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    current = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert sorted(fresh) == sorted(current), "regenerate: python -m groundstation.dashboards --write deploy/grafana/dashboards"
    stale = [name for name in fresh if fresh[name] != current[name]]
    assert not stale, f"stale dashboards {stale}; regenerate: python -m groundstation.dashboards --write {DASHBOARDS}"
    assert dashboards.main(["--check", str(DASHBOARDS)]) == 0


def test_check_reports_a_stale_or_missing_file(tmp_path, capsys):
    dashboards.main(["--write", str(tmp_path)])
    (tmp_path / "fleet-overview.json").write_text("{}\n")
    (tmp_path / "health-zhurong.json").unlink()
    (tmp_path / "health-retired.json").write_text("{}\n")
    assert dashboards.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "fleet-overview.json: differs" in err and "health-zhurong.json: missing" in err
    assert "health-retired.json: no longer generated" in err
    # --write puts it right, removing the dashboard of a spacecraft that is gone.
    dashboards.main(["--write", str(tmp_path)])
    assert not (tmp_path / "health-retired.json").exists()
    assert dashboards.main(["--check", str(tmp_path)]) == 0


def test_one_health_dashboard_per_spacecraft(committed):
    reg = builtin_registry()
    assert set(committed) == {"fleet-overview.json", "ground-station.json"} | {f"health-{sc.name}.json" for sc in reg}
    uids = [d["uid"] for d in committed.values()]
    assert len(uids) == len(set(uids))
    for sc in reg:
        d = committed[f"health-{sc.name}.json"]
        (var,) = [v for v in d["templating"]["list"] if v["name"] != "datasource"]
        assert var["name"] == "spacecraft" and [o["value"] for o in var["options"]] == [sc.name]
        assert var["allowCustomValue"] is False


def test_every_parameter_has_a_panel_with_its_unit_and_limits(committed):
    reg = builtin_registry()
    for sc in reg:
        d = committed[f"health-{sc.name}.json"]
        by_param: dict[str, dict] = {}
        for panel in panels(d):
            for t in panel.get("targets", []):
                m = re.search(r'parameter="([a-z0-9_]+)"', t["expr"])
                if m:
                    by_param[m.group(1)] = panel
        rows = [p["title"].split(" (")[0] for p in d["panels"] if p["type"] == "row"]
        for info in reg.parameters(sc):
            panel = by_param.get(info.name)
            assert panel is not None, f"{sc.name}: no panel for {info.name}"
            assert info.subsystem in rows
            assert f'subsystem="{info.subsystem}"' in panel["targets"][0]["expr"]
            defaults = panel["fieldConfig"]["defaults"]
            steps = [(s["value"], s["color"]) for s in defaults["thresholds"]["steps"]]
            if isinstance(info.calibration, States):
                mapping = defaults["mappings"][0]["options"]
                assert {int(k): v["text"] for k, v in mapping.items()} == info.calibration.states
                limits = info.limits if isinstance(info.limits, StateLimits) else StateLimits(warning={"x"})
                for v in mapping.values():
                    expected = "red" if v["text"] in limits.critical else "yellow" if v["text"] in limits.warning \
                        else "green"
                    assert v["color"] == expected, (sc.name, info.name, v)
                continue
            assert defaults["unit"] == dashboards.grafana_unit(info.unit)
            if info.unit:
                assert f"({info.unit})" in panel["title"]
            assert isinstance(info.limits, Limits)
            _check_steps(sc.name, info.name, info.limits, steps)


def _check_steps(sc: str, name: str, limits: Limits, steps: list[tuple[float | None, str]]) -> None:
    """The colour Grafana picks (last step <= value) agrees with Limits.classify away from the bounds."""
    assert steps[0][0] is None
    values = [v for v, _ in steps[1:]]
    assert values == sorted(values), (sc, name, steps)
    bounds = [b for rng in (limits.warning, limits.critical) if rng for b in rng if b is not None]
    distinct = sorted(set(bounds))
    eps = min([1e-3] + [(b - a) / 4 for a, b in itertools.pairwise(distinct)])  # stay off the neighbouring bound
    probes = {b + d for b in bounds for d in (-eps, eps)} | {min(bounds) - 1e6, max(bounds) + 1e6}
    colour_of = {0: "green", 1: "yellow", 2: "red"}
    for x in sorted(probes):
        grafana = [c for v, c in steps if v is None or x >= v][-1]
        assert grafana == colour_of[int(limits.classify(x))], (sc, name, x, steps, limits.describe())


def test_limit_steps_cover_one_sided_and_equal_bounds():
    assert dashboards.limit_steps(Limits(warning=(None, 10), critical=(None, 20))) == \
        [(None, "green"), (10.0, "yellow"), (20.0, "red")]
    assert dashboards.limit_steps(Limits(critical=(0, 5))) == [(None, "red"), (0.0, "green"), (5.0, "red")]
    assert dashboards.limit_steps(Limits(warning=(0, 5), critical=(0, 9))) == \
        [(None, "red"), (0.0, "green"), (5.0, "yellow"), (9.0, "red")]
    assert dashboards.limit_steps(Limits(warning=(2, None))) == [(None, "yellow"), (2.0, "green")]


def _labels_in(expr: str) -> set[str]:
    labels = set(TARGET_LABELS) | {"le"}
    for name in re.findall(r"\bqueqiao_[a-z_]+", expr):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        labels |= set(SPECS[name].labels) if name in SPECS else set()
        assert name in SPECS or base == LATENCY_NAME, f"unknown metric {name} in {expr}"
    labels |= set(re.findall(r'label_replace\([^"]*"([a-z_]+)"', expr))
    return labels


def test_queries_use_only_exported_metrics_and_labels(committed):
    for file, d in committed.items():
        for title, expr in expressions(d):
            assert "queqiao_" in expr, (file, title)
            known = _labels_in(expr)
            used = set()
            for group in re.findall(r"\bby \(([^)]*)\)", expr):
                used |= {x.strip() for x in group.split(",")}
            for selector in re.findall(r"\{([^}]*)\}", expr):
                if selector.startswith("__"):
                    continue
                used |= set(re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", selector))
            assert used <= known, f"{file} / {title}: labels {used - known} are not exported: {expr}"


def test_panel_ids_unique_and_datasource_provisioned(committed):
    ds = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"]
    (prom,) = [d for d in ds if d["type"] == "prometheus"]
    assert prom["uid"] == dashboards.DATASOURCE_UID and prom["isDefault"] is True
    assert prom["url"] == "http://127.0.0.1:9090"
    full = yaml.safe_load((PROVISIONING / "datasources" / "full-resolution.yaml").read_text())["datasources"]
    assert [d["uid"] for d in full] == [dashboards.FULL_RESOLUTION_UID] and full[0]["type"] == "prometheus"
    for file, d in committed.items():
        ids = [p["id"] for p in panels(d)]
        assert len(ids) == len(set(ids)), file
        (variable,) = [v for v in d["templating"]["list"] if v["name"] == dashboards.DATASOURCE_VARIABLE]
        assert variable["type"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == dashboards.DATASOURCE_UID, file
        for p in panels(d):
            if p["type"] != "row":
                assert p["datasource"]["uid"] == "${datasource}", (file, p["title"])


def test_dashboard_provider_points_at_the_documented_folder():
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "queqiao.yaml").read_text())["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    doc = (REPO / "docs" / "GRAFANA.md").read_text()
    assert path in doc and "python -m groundstation.dashboards --write" in doc


def test_a_new_mission_gets_its_dashboard_without_hand_editing(tmp_path):
    """The third-party example mission: generated with --missions all, its own parameters and limits."""
    demosat = REPO / "tests" / "missions" / "third_party" / "demosat.py"
    reg = load_registry(entry_points=False, mission_path=str(demosat))
    files = dashboards.generate(reg)
    d = json.loads(files["health-demosat.json"])
    exprs = " ".join(e for _, e in expressions(d))
    for info in reg.parameters("demosat"):
        assert f'parameter="{info.name}"' in exprs
    assert "demosat" in json.loads(files["fleet-overview.json"])["description"]


def test_files_read_back_identically_through_the_sdk_model(committed):
    """The JSON is what grafana-foundation-sdk's model of the dashboard schema reads and writes."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for name in committed:
        text = (DASHBOARDS / name).read_text()
        again = json.dumps(Dashboard.from_json(json.loads(text)), cls=JSONEncoder, indent=2, sort_keys=True,
                           ensure_ascii=False) + "\n"
        assert again == text, name
