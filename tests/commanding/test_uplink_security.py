"""The ground's side of SDLS: its configuration keys, key file checks, sequence numbers that survive a
restart, and commands it secures that the emulator's receiving end verifies."""
from __future__ import annotations

import json

import pytest

from groundstation.commanding import Commander
from groundstation.config import ConfigError, parse_config
from groundstation.daemon import Daemon, StartupError
from groundstation.history import CommandHistory
from groundstation.metrics import Metrics
from groundstation.uplink_security import FrameSecurity, UplinkSecurityError
from links.keyfiles import new_associations, write_key_file
from protocols.ccsds.sdls import AntiReplayWindow, process_security
from protocols.missions import registry


class CapturingLink:
    framing = "datagram"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def config(tmp_path, spacecraft_lines: str):
    return parse_config(f"""
[[spacecraft]]
name = "haiyang2d"
uplink = "udp://127.0.0.1:9"
{spacecraft_lines}
[archive]
dir = "{tmp_path / 'archive'}"
[commanding]
enabled = true
""", base_dir=tmp_path)


def test_config_keys_are_validated(tmp_path):
    cfg = config(tmp_path, 'sdls_key_file = "keys/hy2d.toml"\nsdls_spi = 2')
    assert cfg.spacecraft[0].sdls_key_file == tmp_path / "keys" / "hy2d.toml"
    assert cfg.spacecraft[0].sdls_spi == 2
    with pytest.raises(ConfigError) as err:
        config(tmp_path, "sdls_spi = 70000")
    assert "spacecraft[0].sdls_spi: must be <= 65534, not 70000" in str(err.value)
    with pytest.raises(ConfigError, match=r"spacecraft\[0\]\.sdls_spi: needs sdls_key_file"):
        config(tmp_path, "sdls_spi = 2")  # rules between keys run once each key is valid on its own


def test_check_secrets_refuses_a_world_readable_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEQIAO_API_TOKEN", "t" * 24)
    path = write_key_file(tmp_path / "hy2d.toml", "haiyang2d", new_associations({1: "HMAC-SHA-256"}))
    cfg = config(tmp_path, f'sdls_key_file = "{path}"')
    cfg.check_secrets()
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable or writable by others \\(mode 0644\\).*chmod 0600"):
        cfg.check_secrets()
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="no SPI 5"):
        config(tmp_path, f'sdls_key_file = "{path}"\nsdls_spi = 5').check_secrets()


def test_a_spacecraft_that_requires_sdls_needs_a_key_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QUEQIAO_API_TOKEN", "t" * 24)
    with pytest.raises(StartupError, match="haiyang2d requires SDLS .*sdls_key_file"):
        Daemon(config(tmp_path, ""))
    wrong = write_key_file(tmp_path / "z.toml", "zhurong", new_associations({1: "HMAC-SHA-256"}))
    with pytest.raises(StartupError, match="is for 'zhurong', not 'haiyang2d'"):
        Daemon(config(tmp_path, f'sdls_key_file = "{wrong}"'))


def test_sequence_numbers_survive_a_restart_and_are_never_reused(tmp_path):
    path = write_key_file(tmp_path / "z.toml", "zhurong", new_associations({1: "HMAC-SHA-256", 2: "AES-256-GCM"}))
    sc = registry().spacecraft("zhurong")  # type-BD frames: one per command, no CLCW needed
    window = AntiReplayWindow()
    received = []
    for _restart in range(3):
        security = FrameSecurity.open("zhurong", path, 2, tmp_path)
        link = CapturingLink()
        history = CommandHistory(tmp_path / "commands.sqlite")
        commander = Commander(sc, link, history, Metrics(), security=security)
        commander.submit("PING", {}, "li.wei")
        commander.submit("PING", {}, "li.wei")
        history.close()
        for frame in link.sent:
            verified = process_security(frame, {2: security.association}, replay=window)
            assert verified.frame.data[:2] == sc.command("PING").build()[:2]
            received.append(verified.sequence_number)
    assert received == [1, 2, 3, 4, 5, 6]
    state = json.loads((tmp_path / "sdls-zhurong-spi2.json").read_text())
    assert state == {"spacecraft": "zhurong", "spi": 2, "last_sequence_number": 6}


def test_a_damaged_sequence_file_stops_the_start_rather_than_guessing(tmp_path):
    path = write_key_file(tmp_path / "hy2d.toml", "haiyang2d", new_associations({1: "HMAC-SHA-256"}))
    (tmp_path / "sdls-haiyang2d-spi1.json").write_text("{not json")
    with pytest.raises(UplinkSecurityError, match="unreadable .*must not be guessed"):
        FrameSecurity.open("haiyang2d", path, None, tmp_path)
    (tmp_path / "sdls-haiyang2d-spi1.json").write_text('{"spi": 3, "last_sequence_number": 4}')
    with pytest.raises(UplinkSecurityError, match="not the state of haiyang2d SPI 1"):
        FrameSecurity.open("haiyang2d", path, None, tmp_path)
