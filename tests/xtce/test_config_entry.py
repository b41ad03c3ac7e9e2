"""`[[spacecraft]] xtce = "FILE"`: the configuration names an XTCE file, the daemon registers what it defines."""
from __future__ import annotations

import pytest

from groundstation.config import ConfigError, parse_config
from groundstation.daemon import Daemon, StartupError
from protocols.missions import builtin_registry
from tests.deploy.deploy_helpers import REPO

JPSS_XML = REPO / "tests" / "data" / "space_packet_parser" / "jpss1_geolocation_xtce_v1.xml"
NAMES = builtin_registry().names


def _config(tmp_path, body: str):
    return parse_config(body + f'\n[archive]\ndir = "{tmp_path / "archive"}"\n', source="gs.toml",
                        base_dir=JPSS_XML.parent, known_spacecraft=NAMES)


def test_an_xtce_entry_adds_a_spacecraft_to_the_daemon(tmp_path):
    config = _config(tmp_path, '[[spacecraft]]\nname = "jpss1"\nxtce = "jpss1_geolocation_xtce_v1.xml"\nscid = 159\n')
    entry = config.spacecraft[0]
    assert (entry.xtce, entry.scid) == (JPSS_XML, 159)  # relative to the configuration file
    daemon = Daemon(config, http_listen="127.0.0.1:0")
    sc = daemon.registry.spacecraft("jpss1")
    assert sc.scid == 159 and [p.name for p in sc.housekeeping] == ["jpss_att_ephem"]
    assert list(daemon.chain.chains) == ["jpss1"]
    assert "jpss1" not in builtin_registry()  # the process-wide database is left as it was


@pytest.mark.parametrize("body, key, message", [
    ('name = "jpss1"\nxtce = "missing.xml"\nscid = 1', "spacecraft[0].xtce", "does not exist"),
    ('name = "zhurong"\nscid = 1', "spacecraft[0].scid", "only read with xtce"),
    ('name = "jpss1"', "spacecraft[0].name", "not in the mission database"),
])
def test_bad_entries_name_the_key(tmp_path, body, key, message):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, "[[spacecraft]]\n" + body + "\n")
    issues = [str(i) for i in caught.value.issues]
    assert any(key in i and message in i for i in issues), issues


def test_an_xtce_file_without_a_scid_stops_the_daemon_with_a_clear_error(tmp_path):
    config = _config(tmp_path, '[[spacecraft]]\nname = "jpss1"\nxtce = "jpss1_geolocation_xtce_v1.xml"\n')
    with pytest.raises(StartupError, match="jpss1.*names no SCID"):
        Daemon(config, http_listen="127.0.0.1:0")
