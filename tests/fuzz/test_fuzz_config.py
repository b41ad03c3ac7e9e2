"""Fuzz configuration loading: the shipped example, mutated line by line and octet by octet, and random
TOML values in every key.  parse_config either returns a Config or raises ConfigError (naming
file:line:key); no other exception, whatever the text."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from groundstation.config import ConfigError, parse_config
from protocols.missions import registry
from tests.fuzz.support import count, fuzz, mutated

EXAMPLE = (Path(__file__).resolve().parents[2] / "deploy" / "groundstation.example.toml").read_text()
LINES = EXAMPLE.splitlines()
ASSIGNMENTS = [i for i, line in enumerate(LINES) if "=" in line and not line.lstrip().startswith("#")]

toml_values = st.one_of(
    st.integers(-(2**70), 2**70).map(str), st.sampled_from(["nan", "inf", "-inf", "1.5", "-0.0", "1e308"]),
    st.text(max_size=30).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["true", "false", "[]", "{}", '"-1s"', '"99999999999d"', '"1e400"', '"0"', '"1.5KiB"',
                     '"udp://[::1"', '"file://"', '"serial://?baud=x"', '""', '"999999999999999999999GB"']),
)


def parse(text: str) -> None:
    try:
        parse_config(text, source="fuzz.toml", base_dir="/nonexistent-fuzz-dir", known_spacecraft=registry().names)
    except ConfigError as exc:
        assert str(exc) and all(issue.message for issue in exc.issues)


@fuzz
@given(st.lists(st.tuples(st.sampled_from(ASSIGNMENTS), toml_values), min_size=1, max_size=4))
@example([(ASSIGNMENTS[0], "1e400")])
@example([(next(i for i in ASSIGNMENTS if LINES[i].startswith("url")), '"udp://[::1"')])  # ValueError escaped
def test_any_value_in_any_key(replacements):
    count("config_values")
    lines = list(LINES)
    for index, value in replacements:
        key = lines[index].split("=", 1)[0]
        lines[index] = f"{key}= {value}"
    parse("\n".join(lines))


@fuzz
@given(mutated(st.just(EXAMPLE.encode()), max_edits=6))
def test_mutated_text(data):
    count("config_text")
    parse(data.decode("utf-8", "replace"))


@fuzz
@given(st.lists(st.sampled_from(LINES), max_size=40))
def test_shuffled_lines(lines):
    count("config_lines")
    parse("\n".join(lines))


@pytest.mark.xfail(strict=True, raises=ValueError,
                   reason="found by this target: config.py's [mqtt] url check calls urlsplit unguarded "
                          "(config.py is another engineer's; strict: this fails once it is fixed, then drop the mark)")
def test_an_mqtt_url_with_an_unclosed_bracket_is_a_config_error():
    with pytest.raises(ConfigError, match="mqtt.url"):
        parse_config('[mqtt]\nurl = "mqtt://[::1:1883"\n[archive]\ndir = "/nonexistent"\n', source="fuzz.toml")
