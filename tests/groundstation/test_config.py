"""The daemon's TOML configuration: typed result, and errors that name key, file, line and what is allowed."""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from groundstation.config import (
    ArchiveConfig,
    Config,
    ConfigError,
    LimitOverride,
    Section,
    Size,
    load_config,
    parse_config,
    setting,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "groundstation.example.toml"
MISSIONS = ("zhurong", "tianwen1")


def errors_of(text: str, **kwargs) -> list:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), source="gs.toml", **kwargs)
    return info.value.issues


def one_error(text: str, **kwargs):
    issues = errors_of(text, **kwargs)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def test_example_file_loads_cleanly_and_completely():
    config = load_config(EXAMPLE, known_spacecraft=MISSIONS)
    assert config.station.name == "queqiao-gs1" and config.station.http_port == 9108
    assert [link.name for link in config.links] == ["emulator-udp", "x-band-modem", "board-uart"]
    assert config.link("x-band-modem").url.scheme == "tcp" and config.link("x-band-modem").format == "cadu"
    assert config.link("board-uart").url.query["baud"] == "115200" and not config.link("board-uart").enabled
    assert [s.name for s in config.spacecraft] == ["zhurong", "tianwen1"]
    assert config.spacecraft[1].light_time_s == 720.0
    assert config.mqtt.enabled and config.mqtt.password_env == "QUEQIAO_MQTT_PASSWORD"
    assert config.archive.segment_max_bytes == 256 * 2**20 and config.archive.retention_max_age_s == 90 * 86400
    assert config.limit_override("zhurong", "battery_voltage").persistence == 3
    assert config.limit_override("zhurong", "wheel_lf_current").warning == (None, 1.2)
    assert [op.role for op in config.commanding.operators] == ["operator", "viewer"]
    # Every section of the file format is present in the example.
    text = EXAMPLE.read_text()
    for section in ("[station]", "[[links]]", "[[spacecraft]]", "[metrics]", "[mqtt]", "[mqtt.tls]",
                    "[archive]", "[limits.", "[commanding]", "[[commanding.operators]]"):
        assert section in text, section


def test_every_documented_key_is_in_config_md_and_the_example():
    docs = (REPO / "docs" / "CONFIG.md").read_text()
    example = EXAMPLE.read_text()
    for cls, section in [
        ("StationConfig", "station"), ("LinkConfig", "links"), ("SpacecraftConfig", "spacecraft"),
        ("MetricsConfig", "metrics"), ("MqttConfig", "mqtt"), ("MqttTlsConfig", "mqtt.tls"),
        ("ArchiveConfig", "archive"), ("CommandingConfig", "commanding"), ("OperatorConfig", "commanding.operators"),
        ("LimitOverride", "limits"),
    ]:
        import groundstation.config as mod

        for f in dataclasses.fields(getattr(mod, cls)):
            if f.name in ("spacecraft", "parameter") and cls == "LimitOverride":
                continue
            if f.name == "operators":
                continue
            assert f"`{f.name}`" in docs, f"docs/CONFIG.md does not document {section}.{f.name}"
            if f.name not in ("password", "token", "allow_inline_tokens"):  # kept out of the example on purpose
                assert f"{f.name} =" in example or f"[{section}" in example, f"example lacks {section}.{f.name}"


def test_example_file_matches_the_mission_database():
    from protocols.missions.registry import builtin_registry

    missions = builtin_registry()
    config = load_config(EXAMPLE, known_spacecraft=missions.names,
                         known_parameters=lambda sc: {p.name for p in missions.parameters(sc)})
    assert {s.name for s in config.spacecraft} <= set(missions.names)


def test_empty_file_gives_defaults():
    config = parse_config("")
    assert config == Config(source="<config>")
    assert config.archive == ArchiveConfig()
    assert config.mqtt.topic_prefix == "queqiao" and config.mqtt.rate_limit_hz == 1.0 and config.mqtt.publish_on_change
    assert config.commanding.api_token_env == config.commanding.token_env == "QUEQIAO_API_TOKEN"


def test_result_is_frozen():
    config = parse_config('[station]\nname = "a"\n')
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.station.name = "b"


def test_bad_link_url_names_the_element_line_and_allowed_schemes():
    issue = one_error(
        """\
        [[links]]
        name = "a"
        url = "udp://127.0.0.1:10015"

        [[links]]
        name = "b"
        url = "tcp://127.0.0.1:10016"

        [[links]]
        name = "c"
        url = "htp://127.0.0.1:80"
        """
    )
    assert issue.key == "links[2].url"
    assert (issue.file, issue.line) == ("gs.toml", 11)
    assert "htp" in issue.message and "tcp-listen" in issue.message and "serial" in issue.message
    assert str(issue).startswith("gs.toml:11: links[2].url: ")


@pytest.mark.parametrize(
    "text, key, line, words",
    [
        ('[station]\nnmae = "x"\n', "station.nmae", 2, ["unknown key", "name", "http_listen", "log_level"]),
        ('[stations]\nname = "x"\n', "stations", 1, ["unknown key", "station"]),
        ('[[links]]\nname = "a"\nurl = "udp://h:1"\nfromat = "cadu"\n', "links[0].fromat", 4,
         ["unknown key", "format"]),
        ('[station]\nlog_level = "LOUD"\n', "station.log_level", 2, ["DEBUG", "CRITICAL"]),
        ('[station]\nhttp_listen = "9108"\n', "station.http_listen", 2, ["HOST:PORT"]),
        ('[[links]]\nname = "a"\nurl = "udp://h:1"\nformat = "ccsds"\n', "links[0].format", 4, ["frames", "cadu"]),
        ('[[links]]\nname = "a"\n', "links[0].url", 1, ["required"]),
        ('[metrics]\nenabled = "yes"\n', "metrics.enabled", 2, ["expected a boolean", "string"]),
        ('[metrics]\nlatency_buckets = [0.1, 0.05]\n', "metrics.latency_buckets", 2, ["increasing"]),
        ('[mqtt]\nqos = 3\n', "mqtt.qos", 2, ["0, 1 or 2"]),
        ('[mqtt]\nqos = 1.5\n', "mqtt.qos", 2, ["expected an integer"]),
        ('[mqtt]\ntopic_prefix = "queqiao/#"\n', "mqtt.topic_prefix", 2, ["wildcards"]),
        ('[mqtt]\nurl = "http://broker:1883"\n', "mqtt.url", 2, ["mqtt://HOST"]),
        ('[mqtt]\nrate_limit_hz = 0\n', "mqtt.rate_limit_hz", 2, ["> 0"]),
        ('[mqtt]\npassword = "p"\npassword_env = "P"\n', "mqtt.password", 2, ["not both"]),
        ('[mqtt]\npassword_env = "not a name"\n', "mqtt.password_env", 2, ["environment variable name"]),
        ('[mqtt]\nurl = "mqtts://b"\n[mqtt.tls]\ncert = "c.pem"\n', "mqtt.tls", 3, ["cert and key"]),
        ('[mqtt.tls]\nca = "ca.pem"\n', "mqtt.tls", 1, ["mqtts://"]),
        ('[[links]]\nname = "a"\nurl = "tcp://h:1"\nformat = "frames"\n', "links[0].format", 4,
         ["byte stream", "cadu"]),
        ('[archive]\nfsync = "sometimes"\n', "archive.fsync", 2, ["always", "interval", "never"]),
        ('[archive]\nsegment_max_bytes = "12 parsecs"\n', "archive.segment_max_bytes", 2, ["MiB"]),
        ('[archive]\nsegment_max_bytes = 1000\n', "archive.segment_max_bytes", 2, ["at least 65536"]),
        ('[archive]\nretention_max_age_s = 0\n', "archive.retention_max_age_s", 2, ["omit the key"]),
        ('[archive]\nsegment_max_bytes = "1GiB"\nretention_max_bytes = "1GiB"\n', "archive.retention_max_bytes", 3,
         ["twice"]),
        ('[archive]\nfsync = "always"\nfsync_interval_s = 5\n', "archive.fsync_interval_s", 3, ["only applies"]),
        ('[commanding]\napi_token_env = "$TOKEN"\n', "commanding.api_token_env", 2, ["environment variable name"]),
    ],
)
def test_errors_name_key_line_and_what_is_allowed(text, key, line, words):
    issue = one_error(text)
    assert issue.key == key
    assert issue.line == line
    for word in words:
        assert word in issue.message, (word, issue.message)


def test_all_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse_config('[station]\nlog_level = "LOUD"\n\n[mqtt]\nqos = 7\ncolour = "red"\n', source="gs.toml")
    text = str(info.value)
    assert text.startswith("3 configuration errors:")
    assert "gs.toml:2: station.log_level" in text and "gs.toml:5: mqtt.qos" in text and "gs.toml:6: mqtt.colour" in text


def test_toml_syntax_error_has_file_and_line(tmp_path):
    path = tmp_path / "gs.toml"
    path.write_text('[station]\nname = "x"\nlog_level = INFO\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert issue.file == str(path) and issue.line == 3 and "not valid TOML" in issue.message


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config("/nonexistent/groundstation.toml")


def test_spacecraft_names_are_checked_against_the_mission_database():
    text = '[[spacecraft]]\nname = "zhurong"\n\n[[spacecraft]]\nname = "chang-e-9"\n'
    assert len(parse_config(text).spacecraft) == 2  # no database given: any name
    issue = one_error(text, known_spacecraft=MISSIONS)
    assert (issue.key, issue.line) == ("spacecraft[1].name", 5)
    assert "tianwen1, zhurong" in issue.message
    dup = one_error('[[spacecraft]]\nname = "zhurong"\n[[spacecraft]]\nname = "zhurong"\n')
    assert dup.key == "spacecraft[1].name" and "spacecraft[0]" in dup.message


def test_link_rules():
    base = '[[spacecraft]]\nname = "zhurong"\n'
    issue = one_error(base + '[[links]]\nname = "a"\nurl = "udp://h:1"\nspacecraft = "tianwen1"\n')
    assert issue.key == "links[0].spacecraft" and "zhurong" in issue.message
    issue = one_error('[[links]]\nname = "a"\nurl = "udp://h:1"\n[[links]]\nname = "a"\nurl = "udp://h:2"\n')
    assert issue.key == "links[1].name" and "already used by links[0]" in issue.message
    issue = one_error('[[links]]\nname = "a"\nurl = "tcp://h:1"\nreconnect_min_s = 10\nreconnect_max_s = 1\n')
    assert issue.key == "links[0].reconnect_max_s" and issue.line == 5
    issue = one_error('[[links]]\nname = "a"\nurl = "serial:///dev/ttyS0?baud=fast"\n')
    assert issue.key == "links[0].url" and "baud" in issue.message
    link = parse_config('[[links]]\nname = "m"\nurl = "mqtt://127.0.0.1/gs"\nreconnect_max_s = "2m"\n').links[0]
    assert (link.url.port, link.url.path, link.reconnect_max_s) == (1883, "gs", 120.0)
    # The format follows the transport unless given: datagrams carry frames, streams CADUs.
    links = parse_config('[[links]]\nname = "u"\nurl = "udp://h:1"\n[[links]]\nname = "t"\nurl = "tcp-listen://h:2"\n'
                         '[[links]]\nname = "c"\nurl = "udp://h:3"\nformat = "cadu"\n').links
    assert [link.format for link in links] == ["frames", "cadu", "cadu"]
    # Back-to-back frames on a byte stream: the pinned spacecraft gives their length.
    link = parse_config(base + '[[links]]\nname = "r"\nurl = "file:///rec.u8"\nformat = "frames"\n'
                        'spacecraft = "zhurong"\n').links[0]
    assert (link.format, link.spacecraft) == ("frames", "zhurong")


def test_archive_units_and_relative_dir(tmp_path):
    path = tmp_path / "etc" / "gs.toml"
    path.parent.mkdir()
    path.write_text(
        '[archive]\ndir = "archive"\nsegment_max_bytes = "64MiB"\nsegment_max_age_s = "15m"\n'
        'retention_max_bytes = "1.5GB"\nretention_max_age_s = "30d"\nfsync = "interval"\nfsync_interval_s = "250ms"\n'
    )
    a = load_config(path).archive
    assert a.dir == tmp_path / "etc" / "archive"
    assert (a.segment_max_bytes, a.segment_max_age_s) == (64 * 2**20, 900.0)
    assert (a.retention_max_bytes, a.retention_max_age_s, a.fsync_interval_s) == (1_500_000_000, 30 * 86400.0, 0.25)
    from groundstation.archive import ArchiveWriter

    with ArchiveWriter(tmp_path / "a", **a.writer_kwargs()) as w:  # the keys fit the writer
        assert w.segment_max_bytes == 64 * 2**20


def test_limit_overrides():
    text = """\
        [[spacecraft]]
        name = "zhurong"

        [limits.zhurong.battery_voltage]
        warning = [26, 32.5]
        critical = { low = 27.0 }
        persistence = 2

        [limits.zhurong."drive_speed"]
        critical = [-inf, 220]
        """
    issue = one_error(text)
    assert issue.key == "limits.zhurong.battery_voltage.critical" and issue.line == 6
    assert "contain the warning range" in issue.message

    ok = parse_config(textwrap.dedent(text).replace("{ low = 27.0 }", "[24.0, 34]"))
    assert ok.limits == (
        LimitOverride("zhurong", "battery_voltage", (26.0, 32.5), (24.0, 34.0), 2, None),
        LimitOverride("zhurong", "drive_speed", None, (None, 220.0), None, None),
    )
    assert ok.limit_override("zhurong", "nope") is None

    params = {"zhurong": {"battery_voltage"}}
    issue = one_error(textwrap.dedent(text).replace("{ low = 27.0 }", "[24.0, 34]"), known_parameters=params.get)
    assert issue.key == "limits.zhurong.drive_speed" and issue.line == 9 and "no parameter" in issue.message

    for body, key, words in [
        ("warning = [5, 1]", "warning", "above high"),
        ("warning = [1, 2, 3]", "warning", "[low, high]"),
        ("warning = [-inf, inf]", "warning", "at least one finite bound"),
        ("warning = { lo = 1 }", "warning.lo", "unknown key"),
        ("warnign = [1, 2]", "warnign", "unknown key"),
        ("persistence = 0", "persistence", ">= 1"),
        ("hysteresis = -1", "hysteresis", ">= 0"),
    ]:
        issue = one_error(f'[[spacecraft]]\nname = "zhurong"\n[limits.zhurong.battery_voltage]\n{body}\n')
        assert issue.key == f"limits.zhurong.battery_voltage.{key}" and issue.line == 4, (body, str(issue))
        assert words in issue.message
    issue = one_error('[limits.voyager.x]\nwarning = [1, 2]\n')
    assert issue.key == "limits.voyager" and issue.line == 1 and "none declared" in issue.message


def test_operator_tokens_are_never_inline_by_default():
    text = '[[commanding.operators]]\nname = "fd"\nrole = "operator"\ntoken = "s3cret"\n'
    issue = one_error(text)
    assert (issue.key, issue.line) == ("commanding.operators[0].token", 4)
    assert "token_env or token_file" in issue.message
    config = parse_config("[commanding]\nallow_inline_tokens = true\n" + text)
    assert config.commanding.operators[0].resolve_token() == "s3cret"
    assert "s3cret" not in repr(config)

    issue = one_error('[[commanding.operators]]\nname = "fd"\nrole = "admin"\ntoken_env = "T"\n')
    assert issue.key == "commanding.operators[0].role" and "operator, viewer" in issue.message
    issue = one_error('[[commanding.operators]]\nname = "fd"\nrole = "viewer"\n')
    assert issue.key == "commanding.operators[0]" and issue.line == 1 and "exactly one" in issue.message


def test_check_secrets_resolves_env_and_token_files(tmp_path):
    token_file = tmp_path / "tokens" / "viewer"
    token_file.parent.mkdir()
    token_file.write_text("viewer-token\n")
    token_file.chmod(0o600)
    path = tmp_path / "gs.toml"
    path.write_text(textwrap.dedent("""\
        [mqtt]
        enabled = true
        password_env = "MQTT_PW"

        [commanding]
        enabled = true

        [[commanding.operators]]
        name = "fd"
        role = "operator"
        token_env = "FD_TOKEN"

        [[commanding.operators]]
        name = "pr"
        role = "viewer"
        token_file = "tokens/viewer"
        """))
    config = load_config(path)
    env = {"MQTT_PW": "pw", "FD_TOKEN": "fd-token", "QUEQIAO_API_TOKEN": "station"}
    config.check_secrets(env)
    assert config.mqtt.resolve_password(env) == "pw"
    assert [op.resolve_token(env) for op in config.commanding.operators] == ["fd-token", "viewer-token"]

    token_file.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        config.check_secrets({})
    text = str(info.value)
    assert "4 configuration errors" in text and all(i.file == str(path) for i in info.value.issues)
    for expected in ("mqtt.password_env: environment variable MQTT_PW is not set",
                     "commanding.api_token_env: environment variable QUEQIAO_API_TOKEN is not set",
                     "FD_TOKEN is not set", "chmod 600"):
        assert expected in text


def test_check_config_command(tmp_path, capsys):
    from groundstation import config as mod

    parser = argparse.ArgumentParser()
    mod.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check-config", str(EXAMPLE)])
    assert args.func(args) == 0
    assert "OK (3 links, 2 spacecraft)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[archive]\nfsync = "sometimes"\n')
    args = parser.parse_args(["check-config", str(bad)])
    assert args.func(args) == 1
    assert f"{bad}:2: archive.fsync" in capsys.readouterr().err


def test_env_is_not_touched_by_loading(monkeypatch):
    monkeypatch.delenv("QUEQIAO_MQTT_PASSWORD", raising=False)
    load_config(EXAMPLE)  # secrets are only resolved by check_secrets
    assert "QUEQIAO_MQTT_PASSWORD" not in os.environ


def test_check_secrets_checks_tls_files(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = parse_config('[mqtt]\nenabled = true\nurl = "mqtts://broker"\n[mqtt.tls]\nca = "ca.pem"\ncert = "c.pem"\n'
                          'key = "c.key"\n', base_dir=tmp_path, source="gs.toml")
    assert config.mqtt.port == 8883 and config.mqtt.tls.ca == tmp_path / "ca.pem"
    with pytest.raises(ConfigError) as info:
        config.check_secrets({})
    assert [i.key for i in info.value.issues] == ["mqtt.tls.cert", "mqtt.tls.key"]


def test_docs_are_generated_from_the_schema():
    from groundstation.config_docs import render_docs

    committed = (REPO / "docs" / "CONFIG.md").read_text()
    assert committed == render_docs(), "docs/CONFIG.md is stale: python -m groundstation.config --docs > docs/CONFIG.md"
    # Each key is one row of its section's table, with the type, default and meaning from its declaration.
    assert '| `segment_max_bytes` | size | `"256MiB"` | rotate to a new segment at this size (≥ 64 KiB) |' in committed
    assert "| `tc_vcid` | integer 0..63 | `0` |" in committed
    assert "| `fsync` | `\"always\"`, `\"interval\"`, `\"never\"` | `\"interval\"` |" in committed
    assert "### `[mqtt.tls]`" in committed and "### `[[commanding.operators]]`" in committed
    assert "## Adding a key" in committed


def test_docs_command_prints_the_same(capsys):
    from groundstation import config as mod
    from groundstation.config_docs import render_docs

    assert mod.main(["--docs"]) == 0
    assert capsys.readouterr().out == render_docs()


@pydantic_dataclass(frozen=True)
class BufferConfig(Section):
    """held frames"""

    TABLE = "[buffer]"
    max_bytes: Size = setting(1024, "frames held in memory")


@pydantic_dataclass(frozen=True)
class Root(Section):
    buffer: BufferConfig = Field(default_factory=BufferConfig)


def test_a_new_key_is_declared_once_and_validated_documented_and_located():
    """What docs/CONFIG.md's "Adding a key" promises: one field gives validation, errors and docs."""
    from pydantic import TypeAdapter, ValidationError

    from groundstation.config_docs import _docs_sections

    assert TypeAdapter(Root).validate_python({"buffer": {"max_bytes": "2KiB"}}).buffer.max_bytes == 2048
    with pytest.raises(ValidationError) as info:
        TypeAdapter(Root).validate_python({"buffer": {"max_byte": 1}})
    (error,) = info.value.errors()
    assert error["loc"] == ("buffer", "max_byte") and "did you mean 'max_bytes'" in error["msg"]
    assert "| `max_bytes` | size | `1024` | frames held in memory |" in list(_docs_sections(Root))


@pytest.mark.parametrize("text, key, suggestion", [
    ('[station]\nnmae = "x"\n', "station.nmae", "did you mean 'name'?"),
    ('[archive]\nsegment_max_byte = 1\n', "archive.segment_max_byte", "did you mean 'segment_max_bytes'?"),
    ('[comanding]\n', "comanding", "did you mean 'commanding'?"),
    ('[[links]]\nname = "a"\nurl = "udp://h:1"\nformat = "frame"\n', "links[0].format", "did you mean 'frames'?"),
    ('[limits.zhurong.battery_voltage]\nwarning = { lo = 1 }\n', "limits.zhurong.battery_voltage.warning.lo",
     "did you mean 'low'?"),
])
def test_unknown_keys_and_values_suggest_the_closest(text, key, suggestion):
    issues = [i for i in errors_of('[[spacecraft]]\nname = "zhurong"\n' + text) if i.key == key]
    assert issues and suggestion in issues[0].message, [str(i) for i in issues]


def test_unknown_key_far_from_any_gets_no_suggestion():
    issue = one_error('[station]\ncolour = "red"\n')
    assert "did you mean" not in issue.message and "allowed here: name, http_listen, log_level" in issue.message


def test_fields_the_loader_fills_in_cannot_be_set_by_the_file():
    assert one_error('source = "elsewhere.toml"\n').key == "source"
    issue = one_error('[[spacecraft]]\nname = "zhurong"\n[limits.zhurong.battery_voltage]\nspacecraft = "x"\n'
                      'warning = [1, 2]\n')
    assert (issue.key, issue.line) == ("limits.zhurong.battery_voltage.spacecraft", 4)
    assert "allowed here: warning, critical, persistence, hysteresis" in issue.message


def test_every_error_of_one_table_at_once_with_its_line():
    issues = errors_of('[[links]]\nname = "a b"\nurl = "htp://x"\nformat = "ccsds"\nenabled = 1\ncolour = 2\n')
    assert [(i.key, i.line) for i in sorted(issues, key=lambda i: i.line)] == [
        ("links[0].name", 2), ("links[0].url", 3), ("links[0].format", 4), ("links[0].enabled", 5),
        ("links[0].colour", 6)]


def test_objects_built_in_code_are_validated_and_completed():
    from pydantic import ValidationError

    from groundstation.config import LinkConfig, MqttConfig, MqttTlsConfig, StationConfig
    from links.url import parse_link_url

    assert LinkConfig(name="t", url=parse_link_url("tcp://127.0.0.1:1")).format == "cadu"
    assert LinkConfig(name="u", url="udp://127.0.0.1:1").format == "frames"
    assert MqttConfig(url="mqtts://broker").tls == MqttTlsConfig()
    with pytest.raises(ValidationError, match="HOST:PORT"):
        StationConfig(http_listen="9108")


def _check_config(*argv):
    from groundstation import config as mod

    parser = argparse.ArgumentParser()
    mod.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check-config", *map(str, argv)])
    return args.func(args)


INLINE = """\
[[links]]
name = "in"
url = "udp://127.0.0.1:10015"

[[spacecraft]]
name = "zhurong"

[mqtt]
username = "gs"
password = "broker-secret"

[commanding]
allow_inline_tokens = true

[[commanding.operators]]
name = "fd"
role = "operator"
token = "fd-secret"
"""


def test_check_config_secrets_refuses_inline_secrets_in_a_file_others_can_read(tmp_path, capsys):
    path = tmp_path / "gs.toml"
    path.write_text(INLINE)
    path.chmod(0o644)
    assert _check_config(path) == 0  # without --secrets the file is valid
    capsys.readouterr()
    assert _check_config("--secrets", path) == 1
    err = capsys.readouterr().err
    assert err.startswith("2 configuration errors:")
    assert f"{path}:10: mqtt.password: a secret written in a file readable by group and others (mode 644)" in err
    assert "use password_env" in err and "environment file" in err
    assert f"{path}:18: commanding.operators[0].token: a secret written in a file readable by group and others" in err
    assert "token_env" in err and "token_file" in err and f"chmod 600 {path}" in err
    assert "broker-secret" not in err and "fd-secret" not in err

    path.chmod(0o604)
    assert _check_config("--secrets", path) == 1
    assert "readable by others (mode 604)" in capsys.readouterr().err
    path.chmod(0o600)  # only the owner reads it: inline secrets are the operator's choice
    assert _check_config("--secrets", path) == 0
    assert "OK (1 links, 1 spacecraft)" in capsys.readouterr().out


def test_check_config_secrets_accepts_secrets_kept_out_of_the_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "gs.toml"
    path.write_text(INLINE.replace('password = "broker-secret"', 'password_env = "GS_MQTT_PW"')
                    .replace('token = "fd-secret"', 'token_env = "GS_FD_TOKEN"'))
    path.chmod(0o644)
    assert _check_config("--secrets", path) == 0
    assert "OK" in capsys.readouterr().out


def test_check_config_secrets_reports_modes_and_missing_secrets_together(tmp_path, capsys, monkeypatch):
    path = tmp_path / "gs.toml"
    path.write_text(INLINE.replace("allow_inline_tokens = true", "allow_inline_tokens = true\nenabled = true"))
    path.chmod(0o640)
    monkeypatch.delenv("QUEQIAO_API_TOKEN", raising=False)
    assert _check_config("--secrets", path) == 1
    err = capsys.readouterr().err
    assert "3 configuration errors" in err and "readable by group (mode 640)" in err
    assert "commanding.api_token_env: environment variable QUEQIAO_API_TOKEN is not set" in err


def test_check_config_warns_about_no_links_or_no_spacecraft(tmp_path, capsys):
    path = tmp_path / "gs.toml"
    path.write_text('[station]\nname = "gs"\n')
    assert _check_config(path) == 0
    out, err = capsys.readouterr()
    assert "OK (0 links, 0 spacecraft)" in out
    assert f"warning: {path}: links: no [[links]]: the daemon receives no frames" in err
    assert f"warning: {path}: spacecraft: no [[spacecraft]]: every spacecraft of the mission database is decoded" in err

    path.write_text('[[links]]\nname = "a"\nurl = "udp://127.0.0.1:1"\nenabled = false\n'
                    '[[spacecraft]]\nname = "zhurong"\n')
    assert _check_config(path) == 0
    err = capsys.readouterr().err
    assert "every [[links]] is disabled" in err and "[[spacecraft]]" not in err

    assert _check_config(EXAMPLE) == 0
    assert "warning" not in capsys.readouterr().err


def test_check_config_checks_the_mission_database_like_the_daemon(tmp_path, capsys):
    path = tmp_path / "gs.toml"
    path.write_text('[[spacecraft]]\nname = "zhurnog"\n\n[[spacecraft]]\nname = "zhurong"\n'
                    '[limits.zhurong.battery_voltag]\nwarning = [1, 2]\n')
    assert _check_config(path) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: spacecraft[0].name: 'zhurnog' is not in the mission database; did you mean 'zhurong'?" in err
    assert f"{path}:6: limits.zhurong.battery_voltag: zhurong has no parameter 'battery_voltag'" in err
    assert "did you mean 'battery_voltage'?" in err


def test_the_example_shows_every_key_of_every_section():
    """Walks the schema, so a key added to any section (or a new section) must reach the example too."""
    from groundstation.config_docs import section_of, sections

    example = EXAMPLE.read_text()
    kept_out = {"password", "token", "allow_inline_tokens"}  # secrets and a test-only switch, on purpose
    missing = [f"{cls.TABLE} {key}" for cls in sections() for key in cls.keys()
               if key not in kept_out and section_of(cls.__pydantic_fields__[key].annotation)[0] is None
               and not re.search(rf"^(# )?{key} = ", example, re.M)]
    assert not missing, f"deploy/groundstation.example.toml lacks {missing}"


ODD_VALUES = ['1', '-1', '0', '1.5', 'inf', 'nan', 'true', '"x"', '""', '"udp://h:1"', '[]', '[1, 2]', '["a"]', '{}',
              '{ a = 1 }', '1979-05-27T07:32:00Z', '[[1]]', '"1e400"', '99999999999999999999999']
# What a table needs around the key under test (its required keys, what it depends on); else the table alone.
PREAMBLES = {
    "[[links]]": '[[links]]\nname = "l"\nurl = "udp://h:1"',
    "[[spacecraft]]": '[[spacecraft]]\nname = "zhurong"',
    "[mqtt]": '[mqtt]\nurl = "mqtts://b"',
    "[mqtt.tls]": '[mqtt]\nurl = "mqtts://b"\n[mqtt.tls]',
    "[limits.<spacecraft>.<parameter>]": '[[spacecraft]]\nname = "zhurong"\n[limits.zhurong.p]',
    "[[commanding.operators]]": '[[commanding.operators]]\nname = "o"\nrole = "viewer"',
}


def test_any_value_for_any_key_gives_located_errors_never_a_crash():
    from groundstation.config_docs import sections

    checked = 0
    for cls in sections():
        if not cls.TABLE:
            continue
        preamble = PREAMBLES.get(cls.TABLE, cls.TABLE)
        for key in cls.keys():
            if re.search(rf"^{key} = ", preamble, re.M):
                continue  # already set: a second value is a TOML syntax error
            for value in ODD_VALUES:
                text = f"{preamble}\n{key} = {value}\n"
                try:
                    parse_config(text, source="gs.toml")
                except ConfigError as exc:
                    for issue in exc.issues:
                        assert issue.key and issue.line, (text, str(issue))
                checked += 1
    assert checked > 900
