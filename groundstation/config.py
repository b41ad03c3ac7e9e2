"""The ground-station daemon's configuration: one TOML file, validated at start.

The schema is declarative: each section of the file is one frozen (pydantic) dataclass
below, and each key is declared once, as a field with its type, default, allowed values
and description.  The same declarations validate the file, give the Python API the rest
of the code uses (``config.archive.segment_max_bytes``) and generate docs/CONFIG.md
(``python -m groundstation.config --docs``, by groundstation.config_docs).  Rules between
keys of one section live in that section's :meth:`Section.check`; rules between sections
in :meth:`Config.check`.

:func:`load_config` returns a :class:`Config` or raises one :class:`ConfigError` listing
every problem, each naming the key as a dotted path (``links[2].url``), the file and
line where it was found, and what is allowed.  Unknown keys are errors (with a "did you
mean" when a known key is close): a typo must not silently fall back to a default.

Secrets never need to be in the file: MQTT passwords and API tokens come from
environment variables or token files, resolved by :meth:`Config.check_secrets`
(the daemon calls it at start, so a missing secret stops it with a clear error).
"""
import dataclasses
import difflib
import functools
import logging
import math
import os
import re
import ssl
import stat
import sys
import tomllib
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs, InitErrorDetails, PydanticCustomError

from groundstation.tomllines import format_key, line_of, locate_keys
from links.url import LinkUrl, LinkUrlError, parse_link_url

__all__ = [
    "ArchiveConfig",
    "CommandingConfig",
    "EventsConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "LimitOverride",
    "LinkConfig",
    "MetricsConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "OperatorConfig",
    "ParametersConfig",
    "RemoteWriteConfig",
    "Section",
    "SpacecraftConfig",
    "StationConfig",
    "load_config",
    "parse_config",
    "setting",
]

log = logging.getLogger(__name__)

DEFAULT_API_TOKEN_ENV = "QUEQIAO_API_TOKEN"

Bounds = tuple[float | None, float | None] | None  # the same shape as groundstation.alarms.Bounds
Loc = tuple[str | int, ...]


# ---------------------------------------------------------------------------- errors


@dataclasses.dataclass(frozen=True)
class ConfigIssue:
    """One problem: the key's dotted path, what is wrong, and where in which file."""

    key: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(ValueError):
    """The configuration cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        if len(self.issues) == 1:
            text = str(self.issues[0])
        else:
            text = f"{len(self.issues)} configuration errors:\n" + "\n".join(f"  {i}" for i in self.issues)
        super().__init__(text)


def _problem(message: str) -> PydanticCustomError:
    """A validation error carrying our own wording (pydantic's templating is bypassed)."""
    return PydanticCustomError("config", "{message}", {"message": message})


def _fail(problems: list[tuple[Loc, str, Any]]) -> NoReturn:
    """Raise several located problems at once; pydantic prefixes each with the caller's location."""
    raise ValidationError.from_exception_data("config", [
        InitErrorDetails(type=_problem(message), loc=loc, input=value) for loc, message, value in problems])


def _type_name(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", tuple: "an array", dict: "a table"}.get(type(value), type(value).__name__)


_EXPECTED = {"bool": "a boolean", "int": "an integer", "float": "a number", "string": "a string",
             "tuple": "an array", "list": "an array", "iterable": "an array",
             "dict": "a table", "dataclass": "a table", "dataclass_exact": "a table", "model": "a table"}


def _did_you_mean(word: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown_key(name: str, allowed: Collection[str]) -> str:
    return f"unknown key; {_did_you_mean(name, allowed)}allowed here: {', '.join(allowed)}"


def _message(error: Mapping[str, Any]) -> str:
    """One pydantic error in the project's words: what is wrong and what is allowed."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "config":
        return str(ctx["message"])
    if kind == "missing":
        return "required key is missing"
    base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")
    if kind.endswith(("_type", "_parsing", "_from_float")) and base in _EXPECTED:
        return f"expected {_EXPECTED[base]}, got {_type_name(value)} {value!r}"
    if kind == "literal_error":
        allowed = re.findall(r"'((?:[^'\\]|\\.)*)'|(-?\d+)", str(ctx.get("expected", "")))
        names = [a or b for a, b in allowed]
        hint = _did_you_mean(value, names) if isinstance(value, str) else ""
        return f"{value!r} is not allowed; {hint}use one of: {', '.join(names)}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}, not {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, not {value!r}"
    if kind == "too_short":
        return "must not be empty"
    return str(error["msg"])


# ---------------------------------------------------------------------------- value types


@dataclasses.dataclass(frozen=True)
class Shown:
    """How a value type is named in docs/CONFIG.md, and (once, in "Value formats") what it accepts."""

    name: str
    accepts: str = ""


def _rule(ok: Callable[[Any], bool], message: Callable[[Any], str]) -> AfterValidator:
    """A check on an already typed value, worded as ``message(value)``."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise _problem(message(value))
        return value

    return AfterValidator(check)


def _at_least(minimum: int, unit: str = "") -> AfterValidator:
    return _rule(lambda n: n >= minimum, lambda n: f"must be at least {minimum}{unit}, not {n}")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _bytes(value: Any, *, allow_zero: bool = False) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        n = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    else:
        raise _problem('expected a size in bytes: an integer or a string like "256MiB" '
                       f"(units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got {value!r}")
    if n < 0 or (n == 0 and not allow_zero):
        raise _problem(f"must be at least {0 if allow_zero else 1} byte, not {n}"
                       + ("" if allow_zero else "; omit the key for no limit"))
    return n


def _seconds(allow_zero: bool) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            s = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            s = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        else:
            raise _problem('expected a duration: seconds as a number, or a string like "30s", "15m", "12h", "30d", '
                           f"got {value!r}")
        if not math.isfinite(s) or s < 0 or (s == 0 and not allow_zero):
            hint = "; omit the key for no limit" if s == 0 else ""
            raise _problem(f"must be a positive duration, not {value!r}{hint}")
        return s

    return parse


def _path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str):
        raise _problem(f"expected a string (a path), got {_type_name(value)} {value!r}")
    if not value:
        raise _problem("must not be empty")
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path((info.context or {}).get("base_dir", ".")) / path


def _link_url(value: Any) -> LinkUrl:
    if isinstance(value, LinkUrl):
        return value
    if not isinstance(value, str):
        raise _problem(f"expected a string (a link URL), got {_type_name(value)} {value!r}")
    try:
        return parse_link_url(value)
    except LinkUrlError as exc:
        raise _problem(str(exc)) from None


def _range(value: Any) -> tuple[float | None, float | None]:
    """[low, high] (either may be -inf/inf for "none") or {low = .., high = ..}."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in ("low", "high")]
        if unknown:
            _fail([((k,), _unknown_key(k, ("low", "high")), value[k]) for k in unknown])
        low, high = value.get("low"), value.get("high")
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = value
    else:
        raise _problem(f"expected [low, high] or {{ low = .., high = .. }}, got {value!r}")
    out: list[float | None] = []
    for b in (low, high):
        if b is None or (isinstance(b, float) and math.isinf(b)):
            out.append(None)
        elif isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b):
            out.append(float(b))
        else:
            raise _problem(f"bounds must be numbers (use -inf/inf for no bound), got {b!r}")
    if out[0] is None and out[1] is None:
        raise _problem("needs at least one finite bound")
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise _problem(f"low ({out[0]}) is above high ({out[1]})")
    return (out[0], out[1])


def _one_or_many(value: Any) -> Any:
    """An array of tables; ``[key]`` written instead of ``[[key]]`` is taken as one element."""
    return [value] if isinstance(value, dict) else value


def _is_host_port(listen: str) -> bool:
    host, sep, port = listen.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) <= 65535)


def _is_mqtt_broker(url: str) -> bool:
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port <= 65535
    except ValueError:
        return False
    return (parts.scheme in ("mqtt", "mqtts") and bool(parts.hostname) and port_ok and parts.path in ("", "/")
            and not parts.query and not parts.password and not parts.username)


def _is_topic(prefix: str) -> bool:
    return bool(prefix) and not any(c in prefix for c in "+#\0") and not prefix.startswith("/") \
        and not prefix.endswith("/")


Bool = Annotated[bool, Strict(), Shown("bool")]
Int = Annotated[int, Strict(), Shown("integer")]
Number = Annotated[float, Strict(), AllowInfNan(False), Shown("number")]
Text = Annotated[str, Strict(), Shown("string")]
Name = Annotated[str, Strict(), Shown("name", "letters, digits and `_ - .`, starting with a letter or digit"),
                 _rule(_NAME.match,
                       lambda v: f"{v!r}: use letters, digits, '_', '-', '.' (starting with a letter or digit)")]
EnvName = Annotated[str, Strict(), Shown("env name", "letters, digits and `_`, not starting with a digit"),
                    _rule(_ENV_NAME.match, lambda v: f"{v!r} is not an environment variable name (letters, digits, _)")]
Duration = Annotated[float, PlainValidator(_seconds(allow_zero=False)), Shown(
    "duration", 'seconds as a number, or a string with a unit: `"500ms"`, `"30s"`, `"15m"`, `"12h"`, `"30d"`')]
DurationOrZero = Annotated[float, PlainValidator(_seconds(allow_zero=True)), Shown("duration")]
Size = Annotated[int, PlainValidator(_bytes), Shown(
    "size", 'bytes as an integer, or a string with a unit: `"64KiB"`, `"256MiB"`, `"10GiB"`, `"1.5GB"` '
            "(KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024)")]
SizeOrZero = Annotated[int, PlainValidator(lambda v: _bytes(v, allow_zero=True)), Shown("size")]
ConfigPath = Annotated[Path, PlainValidator(_path), Shown(
    "path", "`~` is expanded; relative paths are relative to the configuration file's directory")]
LinkUrlValue = Annotated[LinkUrl, PlainValidator(_link_url), Shown("link URL")]
Range = Annotated[tuple[float | None, float | None], PlainValidator(_range), Shown(
    "range", "`[low, high]` (use `-inf` / `inf` for an open side) or `{ low = .., high = .. }`")]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                     BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]
FrameFormat = Literal["frames", "cadu"]
FsyncPolicy = Literal["always", "interval", "never"]
Role = Literal["operator", "viewer"]

LOG_LEVELS: tuple[str, ...] = typing.get_args(typing.get_args(LogLevel)[0])
FRAME_FORMATS: tuple[str, ...] = typing.get_args(FrameFormat)
FSYNC_POLICIES: tuple[str, ...] = typing.get_args(FsyncPolicy)
ROLES: tuple[str, ...] = typing.get_args(Role)


def setting(default: Any = ..., doc: str = "", *, shown_default: str | None = None, secret: str | None = None,
            **kwargs: Any) -> Any:
    """Declare one key: its default (``...``: required), its description for docs/CONFIG.md, and how the
    default reads there when its value does not say it well.  ``secret``: the key holds a secret, and this
    names the safe place for it instead (the key is kept out of ``repr``, and ``check-config --secrets``
    refuses it in a file that group or others can read)."""
    extra: dict[str, Any] = {}
    if shown_default is not None:
        extra["shown_default"] = shown_default
    if secret is not None:
        extra["secret"] = secret
    return Field(default, description=doc, json_schema_extra=extra or None, repr=secret is None, **kwargs)


# ---------------------------------------------------------------------------- sections

_SCHEMA = ConfigDict(arbitrary_types_allowed=True)


class Section:
    """Base of every section: unknown keys (with a suggestion), every error of the section at once, and
    the section's rules between its keys (:meth:`check`, run once each key is valid on its own).

    ``TABLE`` is how the section is written in TOML, for docs/CONFIG.md; ``NOT_KEYS`` are fields
    that the loader fills in (from a table name, or the file name) and the file may not set.
    """

    TABLE: ClassVar[str] = ""
    NOT_KEYS: ClassVar[tuple[str, ...]] = ()

    def check(self, given: Collection[str], context: Mapping[str, Any]) -> Iterator[tuple[str | Loc | None, str]]:
        """Yield (field or location within this section, or None for the section itself, message) per problem.

        ``given``: the keys the file set (the rest are defaults); ``context``: what the loader knows
        beyond the file (``known_spacecraft``, ``known_parameters``), empty for objects built in code.
        """
        return iter(())

    @classmethod
    def keys(cls) -> list[str]:
        """The keys a file may set in this section, in declaration order."""
        return [name for name in cls.__pydantic_fields__ if name not in cls.NOT_KEYS]  # type: ignore[attr-defined]

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        problems: list[tuple[Loc, str, Any]] = []
        fields = cls.__pydantic_fields__  # type: ignore[attr-defined]
        if isinstance(data, dict):
            given = list(data)
            problems += [((name,), _unknown_key(name, cls.keys()), data[name]) for name in given if name not in fields]
            data = {k: v for k, v in data.items() if k in fields}
        elif isinstance(data, ArgsKwargs):  # built in code: Section(...) or dataclasses.replace
            given = list(fields)[: len(data.args or ())] + list(data.kwargs or {})
        else:
            given = []
        try:
            value = handler(data)
        except ValidationError as exc:
            problems += [(tuple(e["loc"]), _message(e), e.get("input")) for e in exc.errors()]
        else:
            for where, message in value.check(given, info.context or {}):
                loc: Loc = () if where is None else (where,) if isinstance(where, str) else tuple(where)
                problems.append((loc, message, None))
        if problems:
            _fail(problems)
        return value


@dataclass(frozen=True, config=_SCHEMA)
class StationConfig(Section):
    """this station"""

    TABLE = "[station]"

    name: Text = setting("queqiao", "this station's name (logs, MQTT client id)")
    http_listen: Annotated[Text, Shown('"HOST:PORT"'), _rule(
        _is_host_port, lambda v: f"{v!r} must be HOST:PORT, e.g. 127.0.0.1:9108 or [::1]:9108")] = setting(
        "127.0.0.1:9108", "the one HTTP listener: `/metrics`, `/healthz`, the commanding API; IPv6 as `\"[::1]:9108\"`")
    log_level: LogLevel = setting("INFO", "log level (any case)")

    @property
    def http_host(self) -> str:
        return self.http_listen.rpartition(":")[0].strip("[]")

    @property
    def http_port(self) -> int:
        return int(self.http_listen.rpartition(":")[2])


@dataclass(frozen=True, config=_SCHEMA)
class LinkConfig(Section):
    """inputs (one table per link)

    URL schemes (parsed by `links.url.parse_link_url`, shared with the emulator):

    | url | meaning |
    |---|---|
    | `udp://HOST:PORT` | bind and receive one frame per datagram |
    | `tcp://HOST:PORT` | TCP client: connect to a frame/CADU server, reconnect with backoff |
    | `tcp-listen://HOST:PORT` | TCP server: the sender connects to us |
    | `serial:///dev/ttyX?baud=115200` | UART (`baud` optional, default 115200) |
    | `mqtt://HOST:PORT/PREFIX` | frames on `PREFIX/<spacecraft>/downlink`; `mqtts://` for TLS; options `?username=&password_env=&qos=&client_id=` (and `ca`, `cert`, `key` for mqtts) |
    | `file:///path` | read a capture file (`?follow=` to keep reading as it grows) |

    No password ever goes in a URL.
    """  # noqa: E501 (a Markdown table in docs/CONFIG.md)

    TABLE = "[[links]]"

    name: Name = setting(..., "unique; stored with every archived frame")
    url: LinkUrlValue = setting(..., "where frames come from (below)")
    format: FrameFormat | None = setting(
        None, '`"frames"`: one transfer frame per datagram/message (or one CADU: unwrapped); on a byte stream '
              '(tcp, tcp-listen, serial, file) back-to-back frames of the pinned `spacecraft`\'s frame length, as a '
              'station that decoded the code records them; `"cadu"`: ASM-delimited CADUs that the frame chain '
              'synchronises. Default `"frames"` for udp/mqtt, `"cadu"` for tcp, tcp-listen, serial and file',
        shown_default="by transport")
    spacecraft: Text | None = setting(None, "pin the link to one spacecraft (must be a `[[spacecraft]]` of this file); "
                                        "without it the frames' spacecraft IDs decide")
    enabled: Bool = setting(True, "`false` keeps the link in the file without opening it")
    reconnect_min_s: Duration = setting(0.5, "first retry delay after a lost connection (tcp, serial, mqtt)")
    reconnect_max_s: Duration = setting(30.0, "retry delay cap (delays double from the minimum); "
                                          "must be ≥ `reconnect_min_s`")

    def __post_init__(self) -> None:
        if self.format is None:  # a byte stream has no message boundaries: the frame chain needs CADUs
            object.__setattr__(self, "format", "frames" if self.url.framing == "datagram" else "cadu")

    def check(self, given, context):
        if self.format == "frames" and self.url.framing == "stream" and self.spacecraft is None:
            yield "format", (f'a {self.url.scheme} link is a byte stream: format = "frames" reads back-to-back '
                             'frames and needs spacecraft = "NAME" for their length; or use format = "cadu"')
        if self.reconnect_min_s > self.reconnect_max_s:
            yield "reconnect_max_s", f"must be >= reconnect_min_s ({self.reconnect_min_s}), not {self.reconnect_max_s}"


@dataclass(frozen=True, config=_SCHEMA)
class SpacecraftConfig(Section):
    """what this station decodes

    Without any `[[spacecraft]]`, every spacecraft of the mission database is decoded and none is
    commanded (`check-config` warns about it).
    """

    TABLE = "[[spacecraft]]"

    name: Text = setting(..., "a name from the mission database (`protocols/missions`, e.g. `zhurong`, `tianwen1`); "
                          "unique")
    enabled: Bool = setting(True, "`false`: frames are archived but not decoded")
    light_time_s: DurationOrZero | None = setting(
        None, "one-way light time override, used to compare onboard and ground time", shown_default="mission value")
    uplink: LinkUrlValue | None = setting(
        None, "where this spacecraft's telecommands go (`udp://`, `tcp://`, `tcp-listen://`, `serial://`, `mqtt://`); "
              "none: not commanded. Datagram links carry one TC frame per message, byte streams carry CLTUs; "
              "MQTT publishes on `<prefix>/<spacecraft>/uplink`")
    tc_vcid: Annotated[Int, annotated_types.Interval(ge=0, le=63)] = setting(0, "TC virtual channel of the uplink")
    xtce: ConfigPath | None = setting(
        None, "define this spacecraft by an XTCE 1.2 file instead of the mission database (docs/XTCE.md); "
              "`name` is then its name here", shown_default="the mission database")
    scid: Annotated[Int, annotated_types.Interval(ge=0, le=1023)] | None = setting(
        None, "with `xtce`: its spacecraft id when the file does not carry one (files of other tools never do)",
        shown_default="the file's")
    # Only the key file's path is configuration: keys in this file would be readable by whoever reads it.
    sdls_key_file: ConfigPath | None = setting(
        None, "SDLS key file (CCSDS 355.0-B-2 security associations; TOML, mode 0600/0640, docs/OPERATIONS.md): "
              "every TC frame to this spacecraft is authenticated", shown_default="frames go unsecured")
    sdls_spi: Annotated[Int, annotated_types.Interval(ge=1, le=65534)] | None = setting(
        None, "which SA of `sdls_key_file` secures the uplink", shown_default="the file's only SA")

    def check(self, given, context):
        if self.xtce is not None and not self.xtce.is_file():
            yield "xtce", f"XTCE file {self.xtce} does not exist"
        if self.scid is not None and self.xtce is None:
            yield "scid", "scid is only read with xtce = FILE (the mission database names its own SCIDs)"
        if self.sdls_spi is not None and self.sdls_key_file is None:
            yield "sdls_spi", "needs sdls_key_file (the file that holds this SA's key)"
        known = context.get("known_spacecraft")
        if self.xtce is None and known is not None and self.name not in known:
            yield "name", (f"{self.name!r} is not in the mission database; {_did_you_mean(self.name, known)}"
                           f"known spacecraft: {', '.join(sorted(known)) or 'none'}")
        if self.uplink is not None and self.uplink.scheme == "file":
            yield "uplink", "a file cannot carry telecommands to a spacecraft; use udp, tcp, tcp-listen, serial or mqtt"


@dataclass(frozen=True, config=_SCHEMA)
class MetricsConfig(Section):
    """Prometheus exporter on `station.http_listen`"""

    TABLE = "[metrics]"

    enabled: Bool = setting(True, "serve `/metrics`")
    latency_buckets: Annotated[
        tuple[Annotated[Number, annotated_types.Gt(0)], ...], annotated_types.MinLen(1),
        Shown("array of seconds"),
        _rule(lambda b: all(x < y for x, y in zip(b, b[1:], strict=False)), lambda b: "must be strictly increasing"),
    ] | None = setting(None, "receipt → publish latency histogram buckets; positive, strictly increasing",
                   shown_default="the exporter's default (0.0005 … 2.5 s)")


@dataclass(frozen=True, config=_SCHEMA)
class MqttTlsConfig(Section):
    """TLS files for `mqtts://`; `cert` and `key` together for client-certificate authentication"""

    TABLE = "[mqtt.tls]"

    ca: ConfigPath | None = setting(None, "CA bundle to verify the broker", shown_default="system CAs")
    cert: ConfigPath | None = setting(None, "client certificate (with `key`)")
    key: ConfigPath | None = setting(None, "client private key (with `cert`)")

    def check(self, given, context):
        if (self.cert is None) != (self.key is None):
            yield None, "cert and key go together (a client certificate needs its key)"

    def context(self) -> ssl.SSLContext:
        """A client TLS context: these CAs (or the system's), this client certificate if given."""
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.cert:
            context.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return context


@dataclass(frozen=True, config=_SCHEMA)
class MqttConfig(Section):
    """decoded values to a broker

    Topics are `<topic_prefix>/<spacecraft>/<subsystem>/<parameter>` with JSON payloads.
    """

    TABLE = "[mqtt]"

    enabled: Bool = setting(False, "publish decoded parameters")
    url: Annotated[Text, _rule(_is_mqtt_broker, lambda v: (
        f"{v!r} must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT] "
        "(no path, query or credentials: use topic_prefix, username, password_env)"))] = setting(
        "mqtt://127.0.0.1:1883", "`mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (TLS, default port 8883); "
                                 "no path, query or credentials")
    username: Text | None = setting(None, "broker user")
    password: Text | None = setting(None, "inline password — possible, but prefer `password_env`; not both",
                                    secret="password_env (the variable set in an environment file of mode 600, "
                                           "e.g. /etc/queqiao/groundstation.env)")
    password_env: EnvName | None = setting(None, "environment variable holding the password")
    tls: MqttTlsConfig | None = setting(None, "`[mqtt.tls]` below; needs an `mqtts://` url",
                                    shown_default="none (system CAs with `mqtts://`)")
    topic_prefix: Annotated[Text, _rule(_is_topic, lambda v: (
        f"{v!r}: a non-empty topic without wildcards (+, #) or leading/trailing '/'"))] = setting(
        "queqiao", "no `+`, `#`, leading or trailing `/`")
    qos: Annotated[Int, Shown("0, 1 or 2"),
                   _rule(lambda q: q in (0, 1, 2), lambda q: f"must be 0, 1 or 2, not {q}")] = setting(
        0, "MQTT quality of service of the published values")
    rate_limit_hz: Annotated[Number, annotated_types.Gt(0)] = setting(
        1.0, "per parameter: at most this many messages a second")
    publish_on_change: Bool = setting(
        True, "publish a value only when it differs from the last one published (never more often than "
              "`rate_limit_hz`; a held-back latest value goes out when its interval has passed); `false`: publish "
              "every value, rate-limited. A change of limit state is published at once either way")
    buffer_size: Annotated[Int, annotated_types.Ge(0)] = setting(
        10_000, "messages kept while the broker is unreachable; the oldest are dropped beyond it")

    def __post_init__(self) -> None:
        if self.tls is None and urlsplit(self.url).scheme == "mqtts":
            object.__setattr__(self, "tls", MqttTlsConfig())  # TLS with the system CAs

    def check(self, given, context):
        if self.password is not None and self.password_env is not None:
            yield "password", "give password or password_env, not both"
        if "tls" in given and urlsplit(self.url).scheme == "mqtt":
            yield "tls", "TLS settings need an mqtts:// url (mqtt.url is plain mqtt://)"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    def resolve_password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The broker password: inline, or from the environment variable ``password_env``."""
        if self.password is not None:
            return self.password
        return _from_environment("mqtt.password_env", self.password_env, environ)


def _from_environment(key: str, name: str | None, environ: Mapping[str, str] | None) -> str | None:
    """The value of the environment variable ``name`` (None if no variable is configured)."""
    if name is None:
        return None
    env = os.environ if environ is None else environ
    if name not in env:
        raise ConfigError([ConfigIssue(key, f"environment variable {name} is not set")])
    return env[name]


def _is_nats_servers(value: str) -> bool:
    parts = [urlsplit(u.strip()) for u in value.split(",")]
    return all(p.scheme in ("nats", "tls") and p.hostname and not p.path.strip("/") and p.username is None
               for p in parts)


@dataclass(frozen=True, config=_SCHEMA)
class NetworkTlsConfig(MqttTlsConfig):
    """TLS files for the NATS connection (`tls://` servers); `cert` and `key` together for client certificates"""

    TABLE = "[network.tls]"


@dataclass(frozen=True, config=_SCHEMA)
class NetworkConfig(Section):
    """frames to and from the ground-station network (NATS JetStream)

    A site forwards every received frame (after archiving it) to the JetStream stream of its
    spacecraft, subjects `<subject_prefix>.frames.<spacecraft>.<vcid>`; a merge (`[merge]`)
    reads them back. See docs/NETWORK.md.
    """

    TABLE = "[network]"

    enabled: Bool = setting(False, "forward received frames to the network (a site of a network)")
    relay_uplink: Bool = setting(
        False, "send the telecommand frames a merge addresses to this site (`<subject_prefix>.uplink.<site>."
               "<spacecraft>`) on this daemon's `[[spacecraft]] uplink`")
    url: Annotated[Text, _rule(_is_nats_servers, lambda v: (
        f"{v!r} must be nats://HOST:PORT or tls://HOST:PORT, several separated by commas "
        "(no path or credentials: use username, password_env, credentials_file)"))] = setting(
        "nats://127.0.0.1:4222", "NATS servers, comma-separated (any member of the cluster will do)")
    username: Text | None = setting(None, "NATS user")
    password_env: EnvName | None = setting(None, "environment variable holding the NATS password")
    credentials_file: ConfigPath | None = setting(None, "NATS `.creds` file (JWT and NKey seed) instead of a password")
    tls: NetworkTlsConfig | None = setting(None, "`[network.tls]` below", shown_default="none")
    subject_prefix: Annotated[Text, _rule(lambda v: bool(re.fullmatch(r"[A-Za-z0-9_-]+", v)), lambda v: (
        f"{v!r}: one NATS subject token (letters, digits, _ and -)"))] = setting("queqiao", "first subject token")
    replicas: Annotated[Int, annotated_types.Interval(ge=1, le=5)] = setting(
        1, "copies of each stream in the JetStream cluster (3 in a three-node cluster)")
    duplicate_window_s: Duration = setting(
        120.0, "JetStream de-duplicates a message id within this window: the longest catch-up burst it must absorb")
    stream_max_age_s: Duration = setting(86400.0, "frames older than this leave the streams")
    publish_timeout_s: Duration = setting(5.0, "a publish not acknowledged within this is retried from the archive")
    queue_frames: Annotated[Int, annotated_types.Ge(1)] = setting(
        100_000, "frames held in memory for publishing; beyond it (network down) they are sent from the archive")

    def resolve_password(self, environ: Mapping[str, str] | None = None) -> str | None:
        return _from_environment("network.password_env", self.password_env, environ)


@dataclass(frozen=True, config=_SCHEMA)
class MergeConfig(Section):
    """the merge: one best stream from every site's frames (`groundstation merge`)

    Keeps one copy of each frame (spacecraft, VC, frame count with its epoch) — clean over
    corrected over uncorrectable, fewer corrected symbols, earliest receipt — and feeds it to
    this daemon's own archive and chain.
    """

    TABLE = "[merge]"

    enabled: Bool = setting(False, "consume the network's streams (needs `[network] url`)")
    stations: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] = setting(
        (), "the sites expected: a frame every one of them has passed is released without waiting")
    wait_s: Annotated[Duration, _rule(lambda v: v <= 60, lambda v: f"must be at most 60 s, not {v}")] = setting(
        0.2, "how long a frame waits for a better copy from a late site")
    durable: Name = setting("queqiao-merge", "JetStream durable consumer name (one per merge)")
    max_age_s: Duration = setting(
        600.0, "a frame received longer ago than this is an old pass replayed: counted and dropped")
    clock_skew_s: Duration = setting(
        2.0, "a receipt time further than this in the future is a skewed clock: ranked by arrival instead")
    fetch_batch: Annotated[Int, annotated_types.Interval(ge=1, le=10_000)] = setting(
        1000, "messages fetched from a stream at once")
    uplink: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] = setting(
        (), "spacecraft commanded through the sites (needs `[commanding]`): each telecommand frame goes to the "
            "site whose frames carried the spacecraft's most recent good CLCW, before any to the first of `stations`")


@dataclass(frozen=True, config=_SCHEMA)
class ArchiveConfig(Section):
    """the raw frame archive (docs/ARCHIVE.md)

    `ArchiveConfig.writer_kwargs()` gives the matching `ArchiveWriter` arguments.
    """

    TABLE = "[archive]"

    dir: ConfigPath = setting(Path("/var/lib/queqiao/archive"), "archive directory (created if missing)")
    fsync: FsyncPolicy = setting("interval", '`"always"` (every batch durable on return), `"interval"`, '
                                         '`"never"` (kernel decides)')
    fsync_interval_s: Duration = setting(1.0, 'with `"interval"`: fsync this often; a power cut loses at most this '
                                          "much. Setting it with another policy is an error")
    segment_max_bytes: Annotated[Size, _at_least(64 * 1024, " bytes")] = setting(
        256 * 1024 * 1024, "rotate to a new segment at this size (≥ 64 KiB)", shown_default='`"256MiB"`')
    segment_max_age_s: Duration | None = setting(3600.0, "… or when the segment is this old")
    retention_max_bytes: Size | None = setting(
        None, "delete the oldest segments while the archive is larger; at least twice `segment_max_bytes`; "
              "omit for no limit (0 is refused)", shown_default="no limit")
    retention_max_age_s: Duration | None = setting(
        None, "delete segments whose newest frame is older; omit for no limit", shown_default="no limit")
    buffer_max_bytes: SizeOrZero = setting(
        64 * 1024 * 1024, "while the disk refuses writes (full, quota, read-only, I/O error): hold up to this many "
                          "bytes of frames in memory and write them when it takes them again; beyond it the oldest "
                          "are dropped (`queqiao_archive_dropped_frames_total`). `0`: hold nothing",
        shown_default='`"64MiB"`')

    def check(self, given, context):
        if self.retention_max_bytes is not None and self.retention_max_bytes < 2 * self.segment_max_bytes:
            yield "retention_max_bytes", (f"must be at least twice segment_max_bytes ({self.segment_max_bytes}); "
                                          "retention deletes whole segments")
        if "fsync_interval_s" in given and self.fsync != "interval":
            yield "fsync_interval_s", f'only applies with fsync = "interval" (fsync is {self.fsync!r})'

    def writer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`groundstation.archive.ArchiveWriter` (besides the directory)."""
        return {
            "fsync": self.fsync,
            "fsync_interval_s": self.fsync_interval_s,
            "segment_max_bytes": self.segment_max_bytes,
            "segment_max_age_s": self.segment_max_age_s,
            "retention_max_bytes": self.retention_max_bytes,
            "retention_max_age_s": self.retention_max_age_s,
        }


@dataclass(frozen=True, config=_SCHEMA)
class ParametersConfig(Section):
    """the parameter archive: every decoded sample, in Parquet files under `<archive.dir>/parameters`
    (docs/HISTORY.md; read with `groundstation history` and `GET /api/v1/parameters/...`)"""

    TABLE = "[parameters]"

    enabled: Bool = setting(True, "keep every sample (the frame archive stays the source of truth)")
    flush_interval_s: Duration = setting(
        5.0, "write what is pending this often; a crash loses at most this much of the parameter archive "
             "(`groundstation replay --parameters` rebuilds it from the frames)")
    retention_max_age_s: Duration | None = setting(
        None, "delete whole days older than this", shown_default="`archive.retention_max_age_s`")
    max_pending_samples: Annotated[Int, annotated_types.Ge(1000)] = setting(
        4_000_000, "samples held while the disk cannot be written (or not as fast as they arrive: a flood); "
                   "beyond it the oldest are dropped (`queqiao_parameter_archive_samples_dropped_total`); about "
                   "8 octets of memory each")
    flush_samples: Annotated[Int, annotated_types.Ge(1000)] = setting(
        1_000_000, "write early once a spacecraft has this many samples pending, and build the files in pieces "
                   "of this many rows (a flush's memory: about 50 MB per million)")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username and not parts.password


@dataclass(frozen=True, config=_SCHEMA)
class RemoteWriteConfig(Section):
    """Prometheus remote write (protocol 1.0) of every sample to a receiver: Prometheus with
    `--web.enable-remote-write-receiver`, VictoriaMetrics, Mimir, Thanos (docs/HISTORY.md)"""

    TABLE = "[[remote_write]]"

    url: Annotated[Text, _rule(_is_http_url, lambda v: f"{v!r}: expected http(s)://host[:port]/path, "
                                                        "no credentials in the URL (use bearer_token_file)")] = setting(
        ..., "the receiver's write endpoint, e.g. `http://127.0.0.1:8428/api/v1/write`")
    name: Name | None = setting(None, "its name in metrics and logs", shown_default="the URL's host:port")
    timestamp: Literal["ground", "onboard"] = setting(
        "ground", '`"ground"`: the ground receipt time of each sample, `"onboard"`: its onboard time')
    queue_max_samples: Annotated[Int, annotated_types.Ge(1)] = setting(
        5_000_000, "samples held while the receiver is away; beyond it the oldest are dropped and counted")
    bearer_token_file: ConfigPath | None = setting(
        None, "file holding a bearer token sent as `Authorization` (one line; owner-only mode)")

    @property
    def label(self) -> str:
        return self.name or (urlsplit(self.url).netloc or self.url)

    def headers(self, index: int) -> dict[str, str]:
        """HTTP headers for the receiver (the bearer token read from its file); ConfigError if it cannot be read."""
        if self.bearer_token_file is None:
            return {}
        return {"Authorization": "Bearer " + read_token_file(self.bearer_token_file,
                                                              f"remote_write[{index}].bearer_token_file")}


@dataclass(frozen=True, config=_SCHEMA)
class LimitOverride(Section):
    """limit overrides

    Replace the mission database's limits of one parameter (by its leaf name, e.g.
    `battery_voltage`; quote names with unusual characters: `[limits.zhurong."x.y"]`).
    The spacecraft must be a `[[spacecraft]]` of this file; parameter names are checked
    against the mission database when the daemon passes `known_parameters`. Keys not
    given keep the database's value.

    In `LimitOverride`, ranges are `(low, high)` tuples with `None` for an open side —
    the shape `groundstation.alarms` takes.
    """

    TABLE = "[limits.<spacecraft>.<parameter>]"
    NOT_KEYS = ("spacecraft", "parameter")  # from the table's name

    spacecraft: Text
    parameter: Text
    warning: Range | None = setting(None, "warning range", shown_default="database")
    critical: Range | None = setting(None, "critical range; must contain the warning range", shown_default="database")
    persistence: Annotated[Int, annotated_types.Ge(1)] | None = setting(
        None, "consecutive samples that must agree before the limit state changes", shown_default="database / 1")
    hysteresis: Annotated[Number, annotated_types.Ge(0)] | None = setting(
        None, "engineering units a value must come back inside a limit before the state clears",
        shown_default="database / 0")

    def check(self, given, context):
        if self.warning and self.critical:
            (wl, wh), (cl, ch) = self.warning, self.critical
            if (cl is not None and (wl is None or wl < cl)) or (ch is not None and (wh is None or wh > ch)):
                yield "critical", (f"the critical range {list(self.critical)} must contain the warning range "
                                   f"{list(self.warning)}")
        if not set(given) - set(self.NOT_KEYS):
            yield None, "overrides nothing; give warning, critical, persistence or hysteresis"
        known_parameters = context.get("known_parameters")
        known = known_parameters(self.spacecraft) if known_parameters else None
        if known is not None and self.parameter not in known:
            hint = _did_you_mean(self.parameter, known).rstrip()
            yield None, f"{self.spacecraft} has no parameter {self.parameter!r}" + (f"; {hint}" if hint else "")


_LIMIT_TABLES: TypeAdapter[dict[str, dict[str, LimitOverride]]] = TypeAdapter(dict[str, dict[str, LimitOverride]])


def _limit_tables(value: Any, info: ValidationInfo) -> tuple[LimitOverride, ...]:
    """``[limits.<spacecraft>.<parameter>]`` tables -> LimitOverrides, errors located by the table names."""
    if isinstance(value, tuple):  # built in code
        return value
    if not isinstance(value, dict):
        raise _problem(f"expected a table ([limits.<spacecraft>.<parameter>]), got {_type_name(value)}")
    problems: list[tuple[Loc, str, Any]] = []
    tables: dict[str, Any] = {}
    for sc, params in value.items():
        if not isinstance(params, dict):
            problems.append(((sc,), f"expected a table of parameters ([limits.{format_key(sc)}.PARAMETER]), "
                                    f"got {_type_name(params)}", params))
            continue
        tables[sc] = {}
        for param, table in params.items():
            if not isinstance(table, dict):
                problems.append(((sc, param), "expected a table with warning/critical/persistence/hysteresis, "
                                              f"got {_type_name(table)}", table))
                continue
            table, reserved = _with_not_keys(LimitOverride, table, {"spacecraft": sc, "parameter": param})
            problems += [((sc, param, *loc), message, v) for loc, message, v in reserved]
            tables[sc][param] = table
    try:
        validated = _LIMIT_TABLES.validate_python(tables, context=info.context)
    except ValidationError as exc:
        problems += [(tuple(e["loc"]), _message(e), e.get("input")) for e in exc.errors()]
    if problems:
        _fail(problems)
    return tuple(lim for params in validated.values() for lim in params.values())


def _with_not_keys(section: type[Section], table: dict, values: dict[str, Any]) -> tuple[dict, list]:
    """``table`` with the loader's own fields filled in; a file that sets one of them gets an unknown-key error."""
    problems = [((k,), _unknown_key(k, section.keys()), table[k]) for k in values if k in table]
    return {**table, **values}, problems


LimitTables = Annotated[tuple[LimitOverride, ...], PlainValidator(_limit_tables)]


@dataclass(frozen=True, config=_SCHEMA)
class OperatorConfig(Section):
    """one table per operator of the commanding API

    Exactly one of `token_env`, `token_file` (or, if allowed, `token`). Tokens, the
    MQTT password and the readability of the MQTT TLS files are checked by `Config.check_secrets()`
    at daemon start — not when the file is loaded — and every missing one is reported together.
    """

    TABLE = "[[commanding.operators]]"

    name: Name = setting(..., "unique operator name (audit log)")
    role: Role = setting(..., '`"operator"` (may send telecommands) or `"viewer"` (read-only API)')
    token_env: EnvName | None = setting(None, "variable holding this operator's token", shown_default="—")
    token_file: ConfigPath | None = setting(None, "file holding the token (one line); must not be accessible by group "
                                              "or others (`chmod 600`)", shown_default="—")
    token: Text | None = setting(None, "inline token; refused unless `allow_inline_tokens = true`", shown_default="—",
                                 secret="token_env (the variable set in an environment file of mode 600) or "
                                        "token_file (a file of mode 600)")

    def check(self, given, context):
        sources = [k for k in ("token_env", "token_file", "token") if getattr(self, k) is not None]
        if len(sources) != 1:
            yield None, f"give exactly one of token_env or token_file (got {', '.join(sources) or 'none'})"

    def resolve_token(self, environ: Mapping[str, str] | None = None) -> str:
        """The operator's API token; raises ConfigError if it cannot be had safely."""
        key = f"commanding.operators[{self.name}]"
        if self.token is not None:
            return self.token
        if self.token_env is not None:
            env = os.environ if environ is None else environ
            value = env.get(self.token_env, "")
            if not value:
                raise ConfigError([ConfigIssue(f"{key}.token_env",
                                               f"environment variable {self.token_env} is not set")])
            return value
        assert self.token_file is not None
        return read_token_file(self.token_file, f"{key}.token_file")


def read_token_file(path: Path, key: str) -> str:
    """The first line of a secret file that only its owner may access; ConfigError (naming ``key``) otherwise."""
    try:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError([ConfigIssue(
                key, f"{path} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):o}); run chmod 600")])
        lines = path.read_text().splitlines()
        value = lines[0].strip() if lines else ""  # the first line, as groundstation.auth reads it
    except OSError as exc:
        raise ConfigError([ConfigIssue(key, f"cannot read {path}: {exc.strerror}")]) from None
    if not value:
        raise ConfigError([ConfigIssue(key, f"{path} is empty")])
    return value


def _check_key_file(sc: SpacecraftConfig, index: int) -> None:
    from links.keyfiles import KeyFileError, read_key_file

    key = f"spacecraft[{index}].sdls_key_file"
    assert sc.sdls_key_file is not None
    try:
        read_key_file(sc.sdls_key_file, sc.name).association(sc.sdls_spi)
    except KeyFileError as exc:
        raise ConfigError([ConfigIssue(key, str(exc))]) from None
    except KeyError as exc:
        raise ConfigError([ConfigIssue(key, f"{sc.sdls_key_file}: {exc.args[0]}")]) from None


@dataclass(frozen=True, config=_SCHEMA)
class CommandingConfig(Section):
    """the commanding API

    Spacecraft whose downlink carries a CLCW (an OCF in the mission's frame profile) are
    commanded with COP-1 type-AD frames; the others (the AOS profiles without OCF) with
    type-BD bypass frames, sent once, verified by PUS 1 only.
    """

    TABLE = "[commanding]"

    enabled: Bool = setting(False, "serve the commanding API on `station.http_listen`")
    api_token_env: EnvName = setting(DEFAULT_API_TOKEN_ENV, "variable holding the station's own (automation) token; "
                                                        "must be set when enabled")
    allow_inline_tokens: Bool = setting(
        False, 'allow `token = "..."` in operator entries (for tests; never in production)')
    operators: Annotated[tuple[OperatorConfig, ...], BeforeValidator(_one_or_many)] = setting(
        (), "`[[commanding.operators]]` below", shown_default="none")
    fop_window: Annotated[Int, annotated_types.Interval(ge=1, le=127)] = setting(
        5, "COP-1 sliding window: AD frames outstanding (at most 127, half the 8-bit sequence space); at most half "
           "the spacecraft's FARM window (the emulator's is 10), or one lost frame locks the FARM out")
    fop_timeout_s: Duration = setting(2.0, "COP-1 retransmission timer")
    fop_transmission_limit: Annotated[Int, annotated_types.Ge(1)] = setting(
        5, "transmissions of a frame before the FOP gives up and re-initialises")
    verification_timeout_s: Duration = setting(
        60.0, "completion window (from the start report, restarted by each progress report) of commands whose "
              "mission database entry declares none; a stage's report not in its window: `timed_out`")
    history_file: ConfigPath | None = setting(None, "the command history (SQLite, survives restarts)",
                                          shown_default="`<archive.dir>/../commands.sqlite`")

    def check(self, given, context):
        yield from _duplicates(self.operators, "operators", "operator {!r} is already defined by commanding.{}")
        if not self.allow_inline_tokens:
            for i, op in enumerate(self.operators):
                if op.token is not None:
                    yield ("operators", i, "token"), ("inline tokens are refused (the file may be readable by others); "
                                                      "use token_env or token_file, or set "
                                                      "commanding.allow_inline_tokens = true")

    @property
    def token_env(self) -> str:
        """Alias of ``api_token_env`` (the name the command-line client uses)."""
        return self.api_token_env


def _duplicates(items: tuple[Any, ...], field: str, message: str) -> Iterator[tuple[Loc, str]]:
    """A problem at ``field[i].name`` for each element whose name an earlier one already has."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in first:
            yield (field, i, "name"), message.format(item.name, _dotted((field, first[item.name])))
        first.setdefault(item.name, i)


@dataclass(frozen=True, config=_SCHEMA)
class EventsConfig(Section):
    """the event history

    Onboard events, limit transitions, link up/down, bursts of rejected frames and command
    outcomes (docs/API.md, "Events"), written by a thread in small transactions.
    """

    TABLE = "[events]"

    file: ConfigPath | None = setting(None, "the event history (SQLite)",
                                      shown_default="`events.sqlite` beside the command history")
    retention_s: Duration = setting(30 * 86400.0, "drop events older than this (checked hourly)", shown_default='`"30d"`')


@dataclass(frozen=True, config=_SCHEMA)
class Config(Section):
    """The whole file: one field per section."""

    NOT_KEYS = ("source",)

    station: StationConfig = Field(default_factory=StationConfig)
    links: Annotated[tuple[LinkConfig, ...], BeforeValidator(_one_or_many)] = ()
    spacecraft: Annotated[tuple[SpacecraftConfig, ...], BeforeValidator(_one_or_many)] = ()
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig)
    parameters: ParametersConfig = Field(default_factory=ParametersConfig)
    remote_write: Annotated[tuple[RemoteWriteConfig, ...], BeforeValidator(_one_or_many)] = ()
    limits: LimitTables = ()
    commanding: CommandingConfig = Field(default_factory=CommandingConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    merge: MergeConfig = Field(default_factory=MergeConfig)
    source: str | None = None  # the file it came from

    def check(self, given, context):
        yield from _duplicates(self.links, "links", "link name {!r} is already used by {}")
        yield from _duplicates(self.spacecraft, "spacecraft", "spacecraft {!r} is already configured by {}")
        labels: dict[str, int] = {}
        for i, endpoint in enumerate(self.remote_write):
            if endpoint.label in labels:
                yield ("remote_write", i, "name"), (f"{endpoint.label!r} is already the name of "
                                                    f"remote_write[{labels[endpoint.label]}]; give each its own name")
            labels.setdefault(endpoint.label, i)
        names = {s.name for s in self.spacecraft}
        declared = ", ".join(sorted(names)) or "none declared"
        for i, link in enumerate(self.links):
            if link.spacecraft is not None and link.spacecraft not in names:
                yield ("links", i, "spacecraft"), (f"{link.spacecraft!r} is not a [[spacecraft]] of this station; "
                                                   f"{_did_you_mean(link.spacecraft, names)}declared: {declared}")
        if self.merge.enabled and self.network.enabled:
            yield ("merge", "enabled"), ("a merge does not forward to the network it reads: "
                                         "set [network] enabled = false (url is still used)")
        for sc in self.merge.uplink:
            if sc not in names:
                yield ("merge", "uplink"), (f"{sc!r} is not a [[spacecraft]] of this station; "
                                            f"{_did_you_mean(sc, names)}declared: {declared}")
        if self.merge.uplink and not self.commanding.enabled:
            yield ("merge", "uplink"), "commanding through the sites needs [commanding] enabled = true"
        if self.network.relay_uplink and not any(sc.uplink is not None for sc in self.spacecraft):
            yield ("network", "relay_uplink"), "no [[spacecraft]] of this site has an uplink to relay telecommands on"
        for sc in dict.fromkeys(lim.spacecraft for lim in self.limits):
            if sc not in names:
                yield ("limits", sc), f"{sc!r} is not a [[spacecraft]] of this station ({declared})"

    def link(self, name: str) -> LinkConfig:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def limit_override(self, spacecraft: str, parameter: str) -> LimitOverride | None:
        for lim in self.limits:
            if lim.spacecraft == spacecraft and lim.parameter == parameter:
                return lim
        return None

    def check_secrets(self, environ: Mapping[str, str] | None = None) -> None:
        """Resolve every secret the enabled features need; one ConfigError lists all that are missing."""
        issues: list[ConfigIssue] = []
        attempts: list[Callable[[], object]] = []
        if self.mqtt.enabled:
            attempts.append(lambda: self.mqtt.resolve_password(environ))
            for name in ("ca", "cert", "key"):
                tls_path = getattr(self.mqtt.tls, name, None) if self.mqtt.tls else None
                if tls_path is not None and not os.access(tls_path, os.R_OK):
                    issues.append(ConfigIssue(f"mqtt.tls.{name}", f"cannot read {tls_path}", self.source))
        for i, endpoint in enumerate(self.remote_write):
            attempts.append(functools.partial(endpoint.headers, i))
        if self.commanding.enabled:
            env = os.environ if environ is None else environ

            def station_token() -> None:
                if not env.get(self.commanding.api_token_env):
                    raise ConfigError([ConfigIssue("commanding.api_token_env",
                                                   f"environment variable {self.commanding.api_token_env} is not set")])

            attempts.append(station_token)
            attempts += [functools.partial(op.resolve_token, environ) for op in self.commanding.operators]
        for index, sc in enumerate(self.spacecraft):
            if sc.sdls_key_file is not None:
                attempts.append(functools.partial(_check_key_file, sc, index))
        for attempt in attempts:
            try:
                attempt()
            except ConfigError as exc:
                issues += [ConfigIssue(i.key, i.message, self.source) for i in exc.issues]
        if issues:
            raise ConfigError(issues)

    def inline_secrets(self) -> dict[str, str]:
        """The secrets written in the file itself: dotted key -> where that secret belongs instead."""
        return {_dotted((*loc, name)): info.json_schema_extra["secret"]
                for loc, section in _sections_of(self)
                for name, info in type(section).__pydantic_fields__.items()  # type: ignore[attr-defined]
                if isinstance(info.json_schema_extra, dict) and "secret" in info.json_schema_extra
                and getattr(section, name) is not None}

    def check_inline_secrets(self) -> None:
        """Refuse secrets written in a configuration file that group or others can read (one ConfigError)."""
        secrets = self.inline_secrets()
        if not secrets or self.source is None or not os.path.isfile(self.source):
            return
        path = Path(self.source)
        mode = stat.S_IMODE(path.stat().st_mode)
        readers = [who for who, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH)) if mode & bit]
        if not readers:
            return
        where = locate_keys(path.read_text(encoding="utf-8"))
        raise ConfigError([ConfigIssue(
            key, f"a secret written in a file readable by {' and '.join(readers)} (mode {mode:o}); "
                 f"use {alternative} instead, or make the file readable by its owner only (chmod 600 {path})",
            self.source, line_of(where, key)) for key, alternative in secrets.items()])

    def warnings(self) -> list[ConfigIssue]:
        """What is valid but probably not meant: a station that receives nothing, or decodes without a list."""
        out = []
        if not self.links:
            out.append(ConfigIssue("links", "no [[links]]: the daemon receives no frames", self.source))
        elif not any(link.enabled for link in self.links):
            out.append(ConfigIssue("links", "every [[links]] is disabled: the daemon receives no frames", self.source))
        if not self.spacecraft:
            out.append(ConfigIssue("spacecraft", "no [[spacecraft]]: every spacecraft of the mission database is "
                                                 "decoded and none is commanded", self.source))
        return out


def _sections_of(section: Section, loc: Loc = ()) -> Iterator[tuple[Loc, Section]]:
    """Every section object in the tree, with its location."""
    yield loc, section
    for name in type(section).__pydantic_fields__:  # type: ignore[attr-defined]
        value = getattr(section, name)
        if isinstance(value, Section):
            yield from _sections_of(value, (*loc, name))
        elif isinstance(value, tuple) and value and isinstance(value[0], Section):
            for i, item in enumerate(value):
                item_loc = (*loc, name, item.spacecraft, item.parameter) if isinstance(item, LimitOverride) \
                    else (*loc, name, i)
                yield from _sections_of(item, item_loc)


_CONFIG: TypeAdapter[Config] = TypeAdapter(Config)


# ---------------------------------------------------------------------------- loading


def load_config(
    path: str | os.PathLike[str],
    *,
    missions: Any = None,
    known_spacecraft: Collection[str] | None = None,
    known_parameters: Callable[[str], Collection[str] | None] | None = None,
) -> Config:
    """Load and validate the TOML file at ``path``.

    ``known_spacecraft``: the mission database's spacecraft names; when given, every
    spacecraft name in the file must be one of them.  ``known_parameters(spacecraft)``:
    that spacecraft's parameter names (or None if unknown), to check limit overrides.
    ``missions``: a mission registry (``protocols.missions.registry()``), which gives both.
    Relative paths in the file (archive dir, token files, TLS files) are relative to
    the file's directory.
    """
    if missions is not None:
        known_spacecraft = missions.names
        known_parameters = lambda sc: [p.name for p in missions.parameters(sc)] if sc in missions else None  # noqa: E731
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read configuration: {exc.strerror}", str(path))]) from None
    return parse_config(text, source=str(path), base_dir=path.parent,
                        known_spacecraft=known_spacecraft, known_parameters=known_parameters)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: str | os.PathLike[str] = ".",
    known_spacecraft: Collection[str] | None = None,
    known_parameters: Callable[[str], Collection[str] | None] | None = None,
) -> Config:
    """Validate TOML ``text`` (see :func:`load_config`); ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise ConfigError([ConfigIssue("", f"not valid TOML: {exc}", source, int(m.group(1)) if m else None)]) from None
    data, reserved = _with_not_keys(Config, data, {"source": source})
    context = {"base_dir": Path(base_dir),
               "known_spacecraft": None if known_spacecraft is None else set(known_spacecraft),
               "known_parameters": known_parameters}
    errors = [(tuple(loc), message) for loc, message, _ in reserved]
    try:
        config = _CONFIG.validate_python(data, context=context)
    except ValidationError as exc:
        errors += [(tuple(e["loc"]), _message(e)) for e in exc.errors()]
    if errors:
        where = locate_keys(text)
        issues = [ConfigIssue(_dotted(loc), message, source, line_of(where, _dotted(loc))) for loc, message in errors]
        raise ConfigError(sorted(issues, key=lambda i: i.line or 0))  # in file order
    return config


def _dotted(loc: Loc) -> str:
    """("links", 2, "url") -> "links[2].url"; table names that are not bare TOML keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + format_key(part)
    return out


# ---------------------------------------------------------------------------- command line


def add_parser(subparsers) -> None:
    """`groundstation check-config FILE`: validate a configuration and exit 0, or print every error."""
    parser = subparsers.add_parser("check-config", help="validate a ground-station configuration file")
    parser.add_argument("file")
    parser.add_argument("--secrets", action="store_true",
                        help="also resolve tokens and passwords (env, files), and refuse secrets written in a file "
                             "that group or others can read")
    parser.set_defaults(func=_check_config)


def _check_config(args) -> int:
    from protocols.missions import registry

    try:
        config = load_config(args.file, missions=registry())
        if args.secrets:
            issues = []
            for check in (config.check_inline_secrets, config.check_secrets):
                try:
                    check()
                except ConfigError as exc:
                    issues += exc.issues
            if issues:
                raise ConfigError(issues)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    for issue in config.warnings():
        sys.stderr.write(f"warning: {issue}\n")
    sys.stdout.write(f"{args.file}: OK ({len(config.links)} links, {len(config.spacecraft)} spacecraft)\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m groundstation.config --docs``: print docs/CONFIG.md as generated from the schema."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m groundstation.config", description=main.__doc__)
    parser.add_argument("--docs", action="store_true", help="print docs/CONFIG.md")
    args = parser.parse_args(argv)
    if not args.docs:
        parser.print_usage(sys.stderr)
        return 2
    from groundstation.config_docs import render_docs

    sys.stdout.write(render_docs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
