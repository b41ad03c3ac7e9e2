"""docs/OPERATIONS.md and docs/ARM-CHECK.md: every deploy/ file they name exists, every alert is listed."""
from __future__ import annotations

import re

import pytest
import yaml
from deploy_helpers import DEPLOY, REPO

DOCS = [REPO / "docs" / "OPERATIONS.md", REPO / "docs" / "ARM-CHECK.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_named_deploy_files_exist(doc):
    text = doc.read_text()
    paths = set(re.findall(r"(?<![\w/])deploy/[\w@.\-/]+[\w@]", text))
    assert paths, f"{doc.name} names no deploy/ files"
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert missing == [], f"{doc.name} names files that do not exist: {missing}"


def test_operations_lists_every_alert():
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "queqiao.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert sorted(a for a in alerts if f"| {a} |" not in text) == []


def test_operations_acl_table_matches_the_acl():
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    users = re.findall(r"^user (\w+)$", acl, re.M)
    assert users == ["flightsw", "groundstation", "reader"]
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    for user in users:
        assert f"| `{user}`" in text
