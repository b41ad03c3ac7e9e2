"""docs/CONFIG.md, generated from the schema in groundstation.config.

Each section class gives a heading (its ``TABLE`` and the first line of its docstring), a
table of its keys (type, default, meaning, from the field declarations) and the rest of its
docstring.  ``python -m groundstation.config --docs > docs/CONFIG.md`` writes it; a test
fails when the committed file differs.
"""
import dataclasses
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types

from groundstation.config import Config, Section, Shown

__all__ = ["render_docs", "section_of", "sections"]

_DOCS_HEADER = """\
# Ground-station configuration

<!-- Generated from groundstation/config.py by `python -m groundstation.config --docs > docs/CONFIG.md`;
     do not edit by hand (tests/groundstation/test_config.py fails when this file is stale). -->

The daemon reads one TOML file (by default `/etc/queqiao/groundstation.toml`) and
validates it completely before starting. A complete, commented example is
`deploy/groundstation.example.toml`; check a file with

```sh
groundstation check-config /etc/queqiao/groundstation.toml            # structure and values
groundstation check-config --secrets /etc/queqiao/groundstation.toml  # also tokens, passwords and file modes
```

`check-config` checks the file against the mission database as the daemon does, and warns
(exit status 0) about a file with no `[[links]]` (or none enabled) or no `[[spacecraft]]`.
With `--secrets` it also resolves every secret the enabled features need (environment
variables, token files, TLS files), and fails when a secret is written in the file itself
(`mqtt.password`, an operator's `token`) while the file is readable by group or others; the
message names the key, the file's mode and where the secret belongs instead.

In code: `groundstation.config.load_config(path, *, missions=None, known_spacecraft=None,
known_parameters=None) -> Config` (frozen dataclasses: `Config`, `StationConfig`,
`LinkConfig`, `SpacecraftConfig`, `MetricsConfig`, `MqttConfig`, `MqttTlsConfig`,
`ArchiveConfig`, `LimitOverride`, `CommandingConfig`, `OperatorConfig`), and
`Config.check_secrets(environ=None)` which the daemon calls at start.
`missions` is a mission registry (`protocols.missions.registry()`), or give its parts:
`known_spacecraft`, the spacecraft names, and `known_parameters(name)`, a spacecraft's
parameter names (or None).

## Adding a key

Each section of the file is one class in `groundstation/config.py` (`[archive]` is
`ArchiveConfig`), and each key is declared there once, as a field:

```python
class SpacecraftConfig(Section):
    ...
    sdls_key_file: ConfigPath | None = setting(None, "this spacecraft's SDLS keys (a file of mode 600)")

class ArchiveConfig(Section):
    ...
    buffer_max_bytes: Size = setting(64 * 2**20, "frames held in memory while the archive disk is full",
                                     shown_default='`"64MiB"`')
```

The type says what is accepted (`Bool`, `Int`, `Number`, `Text`, `Name`, `EnvName`,
`Duration`, `Size`, `ConfigPath`, `LinkUrlValue`, a `Literal[...]` of allowed strings, or
`Annotated[Int, annotated_types.Ge(1)]` for a range); `setting(default, description)`
gives the default (a value of the field's Python type, as code uses it; `...` for a required key) and the text of this page (`shown_default=`
when the default's value does not say it well, `secret="where it belongs instead"` for a
key that holds a secret). Rules between keys of one section go in that class's `check()`,
rules between sections in `Config.check()`. A new section is a new class (a subclass of
`Section` with `TABLE = "[name]"`) and one field of `Config` (or of its parent section).
Then regenerate this page (`python -m groundstation.config --docs > docs/CONFIG.md`) and
add the key to `deploy/groundstation.example.toml`; the tests check both.

## Errors

Every problem is reported, all at once, as one `ConfigError` whose `issues` each carry
the key as a dotted path, the file and line, and what is allowed:

```
4 configuration errors:
  /etc/queqiao/groundstation.toml:11: links[2].url: link URL 'htp://10.0.0.2:80': unknown scheme 'htp'; allowed: udp, tcp, tcp-listen, serial, file, mqtt, mqtts
  /etc/queqiao/groundstation.toml:19: archive.fsync: 'sometimes' is not allowed; use one of: always, interval, never
  /etc/queqiao/groundstation.toml:23: mqtt.colour: unknown key; allowed here: enabled, url, username, ...
  /etc/queqiao/groundstation.toml:24: mqtt.topic_prefx: unknown key; did you mean 'topic_prefix'? allowed here: ...
```

Array elements are numbered from 0 in file order (`links[2]` is the third
`[[links]]`). **Unknown keys are errors** — a typo never falls back to a default.
Rules between the keys of one table (a critical range that must contain the warning range)
are checked once each key of that table is valid on its own, rules between tables (a link's
spacecraft that must be declared) once the whole file is.
"""  # noqa: E501 (example error lines)


def _flatten(tp: Any) -> tuple[Any, list[Any]]:
    """A type without its Annotated layers, and their metadata (outermost last)."""
    if typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        inner, inner_meta = _flatten(base)
        return inner, inner_meta + list(meta)
    return tp, []


def _value_type(tp: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The value type of a field (None and Annotated layers removed), with all its metadata."""
    base, meta = _flatten(tp)
    if typing.get_origin(base) in (Union, types.UnionType):
        (base,) = [a for a in typing.get_args(base) if a is not type(None)]
        base, inner = _flatten(base)
        meta = inner + meta
    return base, meta + metadata


def section_of(tp: Any) -> tuple[type[Section] | None, bool]:
    """(the Section class a field holds, whether it is an array of them)."""
    base, _ = _value_type(tp, [])
    if typing.get_origin(base) is tuple:
        inner, _ = _value_type(typing.get_args(base)[0], [])
        return (inner, True) if isinstance(inner, type) and issubclass(inner, Section) else (None, False)
    return (base, False) if isinstance(base, type) and issubclass(base, Section) else (None, False)


def _type_text(info: Any) -> str:
    base, meta = _value_type(info.annotation, list(info.metadata))
    section, many = section_of(info.annotation)
    if section is not None:
        return "array of tables" if many else "table"
    if typing.get_origin(base) is Literal:
        return ", ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in typing.get_args(base))
    shown = [m for m in meta if isinstance(m, Shown)]
    text = shown[-1].name if shown else getattr(base, "__name__", str(base))
    bounds: dict[str, Any] = {}
    for m in meta:
        if isinstance(m, (annotated_types.Interval, annotated_types.Ge, annotated_types.Gt, annotated_types.Le,
                          annotated_types.Lt)):
            bounds.update({f.name: getattr(m, f.name) for f in dataclasses.fields(m) if getattr(m, f.name) is not None})
    if "ge" in bounds and "le" in bounds:
        return f"{text} {bounds['ge']}..{bounds['le']}"
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    return " ".join([text] + [f"{signs[k]} {v}" for k, v in bounds.items()])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (str, Path)):
        return f'"{value}"'
    return str(value)


def _default_text(info: Any) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "shown_default" in extra:
        return str(extra["shown_default"])
    if info.is_required():
        return "required"
    if info.default is None:
        return "none"
    return f"`{_toml_value(info.default)}`"


def _meaning(info: Any) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    text = info.description or ""
    if "secret" in extra:
        text += (f". A secret: better in {extra['secret']}; `check-config --secrets` refuses it in a file that "
                 "group or others can read")
    return text


def _docs_sections(cls: type[Section], depth: int = 2) -> Iterator[str]:
    fields = cls.__pydantic_fields__  # type: ignore[attr-defined]
    if cls.TABLE:
        title, _, prose = (cls.__doc__ or "").partition("\n")
        yield f"{'#' * depth} `{cls.TABLE}` — {title.strip()}\n\n| key | type | default | meaning |\n|---|---|---|---|"
        for name in cls.keys():
            info = fields[name]
            yield f"| `{name}` | {_type_text(info)} | {_default_text(info)} | {_meaning(info)} |"
        prose = "\n".join(line.removeprefix("    ") for line in prose.strip("\n").splitlines()).strip()
        yield "\n" + prose + "\n" if prose else ""
    for name in cls.keys():
        section, _ = section_of(fields[name].annotation)
        if section is not None:
            yield from _docs_sections(section, depth + 1 if cls.TABLE else depth)


def sections(cls: type[Section] = Config) -> Iterator[type[Section]]:
    """``cls`` and every section below it, in file order."""
    yield cls
    for info in cls.__pydantic_fields__.values():  # type: ignore[attr-defined]
        section, _ = section_of(info.annotation)
        if section is not None:
            yield from sections(section)


def _value_formats() -> dict[str, str]:
    """What each value type accepts, from the ``Shown`` of every key that uses it."""
    seen: dict[str, str] = {}
    for cls in sections():
        for info in cls.__pydantic_fields__.values():  # type: ignore[attr-defined]
            for m in _value_type(info.annotation, list(info.metadata))[1]:
                if isinstance(m, Shown) and m.accepts:
                    seen.setdefault(m.name, m.accepts)
    return seen


def render_docs() -> str:
    """docs/CONFIG.md, from the schema in groundstation.config."""
    formats = "\n".join(f"- **{name}**: {accepts}." for name, accepts in _value_formats().items())
    body = "\n".join(line for line in _docs_sections(Config) if line is not None)
    return f"{_DOCS_HEADER}\n## Value formats\n\n{formats}\n\n{body}".rstrip("\n") + "\n"


