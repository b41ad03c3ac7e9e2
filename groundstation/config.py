"""The ground-station daemon's configuration: one TOML file, validated at start.

:func:`load_config` turns the file into frozen dataclasses or raises one
:class:`ConfigError` listing every problem, each naming the key as a dotted path
(``links[2].url``), the file and line where it was found, and what is allowed.
Unknown keys are errors: a typo must not silently fall back to a default.

Secrets never need to be in the file: MQTT passwords and API tokens come from
environment variables or token files, resolved by :meth:`Config.check_secrets`
(the daemon calls it at start, so a missing secret stops it with a clear error).

Every key is documented in docs/CONFIG.md; deploy/groundstation.example.toml is a
complete example.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from links.url import LinkUrl, LinkUrlError, parse_link_url

__all__ = [
    "ArchiveConfig",
    "CommandingConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "LimitOverride",
    "LinkConfig",
    "MetricsConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "OperatorConfig",
    "SpacecraftConfig",
    "StationConfig",
    "load_config",
    "parse_config",
]

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FRAME_FORMATS = ("frames", "cadu")
FSYNC_POLICIES = ("always", "interval", "never")
ROLES = ("operator", "viewer")
DEFAULT_API_TOKEN_ENV = "QUEQIAO_API_TOKEN"

Bounds = tuple[float | None, float | None] | None  # the same shape as groundstation.alarms.Bounds


# ---------------------------------------------------------------------------- errors


@dataclass(frozen=True)
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


# ---------------------------------------------------------------------------- the typed configuration


@dataclass(frozen=True)
class StationConfig:
    name: str = "queqiao"
    http_listen: str = "127.0.0.1:9108"  # HOST:PORT for /metrics, /healthz and the API
    log_level: str = "INFO"

    @property
    def http_host(self) -> str:
        return self.http_listen.rpartition(":")[0].strip("[]")

    @property
    def http_port(self) -> int:
        return int(self.http_listen.rpartition(":")[2])


@dataclass(frozen=True)
class LinkConfig:
    name: str
    url: LinkUrl
    format: str = "frames"  # "frames": one transfer frame per message/read; "cadu": ASM-delimited stream
    spacecraft: str | None = None  # None: whatever spacecraft the frames' SCIDs say
    enabled: bool = True
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


@dataclass(frozen=True)
class SpacecraftConfig:
    name: str
    enabled: bool = True
    light_time_s: float | None = None  # None: the mission database's (or computed) one-way light time
    uplink: LinkUrl | None = None  # where telecommands go (None: this spacecraft is not commanded)
    tc_vcid: int = 0  # TC virtual channel of the uplink
    sdls_key_file: Path | None = None  # SDLS key file (CCSDS 355.0-B-2 SAs); None: frames go unsecured
    sdls_spi: int | None = None  # which SA of the key file secures the uplink (None: its only one)


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    latency_buckets: tuple[float, ...] | None = None  # None: the exporter's default buckets (seconds)


@dataclass(frozen=True)
class MqttTlsConfig:
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_env: str | None = None
    tls: MqttTlsConfig | None = None
    topic_prefix: str = "queqiao"
    qos: int = 0
    rate_limit_hz: float = 1.0  # per parameter
    publish_on_change: bool = True
    buffer_size: int = 10_000  # messages kept while the broker is away

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
        if self.password_env is None:
            return None
        env = os.environ if environ is None else environ
        if self.password_env not in env:
            raise ConfigError([ConfigIssue("mqtt.password_env", f"environment variable {self.password_env} is not set")])
        return env[self.password_env]


@dataclass(frozen=True)
class ArchiveConfig:
    dir: Path = Path("/var/lib/queqiao/archive")
    fsync: str = "interval"
    fsync_interval_s: float = 1.0
    segment_max_bytes: int = 256 * 1024 * 1024
    segment_max_age_s: float | None = 3600.0
    retention_max_bytes: int | None = None  # None: no size limit
    retention_max_age_s: float | None = None  # None: no age limit

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


@dataclass(frozen=True)
class LimitOverride:
    """Replaces the mission database's limits of one parameter (None: keep the database's)."""

    spacecraft: str
    parameter: str
    warning: Bounds = None
    critical: Bounds = None
    persistence: int | None = None  # consecutive samples before a state change
    hysteresis: float | None = None  # engineering units a value must come back inside a limit


@dataclass(frozen=True)
class OperatorConfig:
    name: str
    role: str  # "operator" (may command) or "viewer" (read-only API)
    token_env: str | None = None
    token_file: Path | None = None
    token: str | None = field(default=None, repr=False)  # only with commanding.allow_inline_tokens

    def resolve_token(self, environ: Mapping[str, str] | None = None) -> str:
        """The operator's API token; raises ConfigError if it cannot be had safely."""
        key = f"commanding.operators[{self.name}]"
        if self.token is not None:
            return self.token
        if self.token_env is not None:
            env = os.environ if environ is None else environ
            value = env.get(self.token_env, "")
            if not value:
                raise ConfigError([ConfigIssue(f"{key}.token_env", f"environment variable {self.token_env} is not set")])
            return value
        assert self.token_file is not None
        try:
            st = self.token_file.stat()
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError([ConfigIssue(
                    f"{key}.token_file",
                    f"{self.token_file} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):o}); run chmod 600",
                )])
            lines = self.token_file.read_text().splitlines()
            value = lines[0].strip() if lines else ""  # the first line, as groundstation.auth reads it
        except OSError as exc:
            raise ConfigError([ConfigIssue(f"{key}.token_file", f"cannot read {self.token_file}: {exc.strerror}")]) from None
        if not value:
            raise ConfigError([ConfigIssue(f"{key}.token_file", f"{self.token_file} is empty")])
        return value


@dataclass(frozen=True)
class CommandingConfig:
    enabled: bool = False
    api_token_env: str = DEFAULT_API_TOKEN_ENV  # the station's own (automation) token
    allow_inline_tokens: bool = False
    operators: tuple[OperatorConfig, ...] = ()
    fop_window: int = 5  # COP-1 sliding window (frames outstanding); at most half the spacecraft's FARM window
    fop_timeout_s: float = 2.0  # COP-1 retransmission timer
    fop_transmission_limit: int = 5  # transmissions of a frame before the FOP gives up
    verification_timeout_s: float = 60.0  # from uplink to a final PUS 1 report
    history_file: Path | None = None  # command history (SQLite); None: commands.sqlite beside the archive

    @property
    def token_env(self) -> str:
        """Alias of ``api_token_env`` (the name the command-line client uses)."""
        return self.api_token_env


@dataclass(frozen=True)
class Config:
    station: StationConfig = StationConfig()
    links: tuple[LinkConfig, ...] = ()
    spacecraft: tuple[SpacecraftConfig, ...] = ()
    metrics: MetricsConfig = MetricsConfig()
    mqtt: MqttConfig = MqttConfig()
    archive: ArchiveConfig = ArchiveConfig()
    limits: tuple[LimitOverride, ...] = ()
    commanding: CommandingConfig = CommandingConfig()
    source: str | None = None  # the file it came from

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
            for key in ("ca", "cert", "key"):
                tls_path = getattr(self.mqtt.tls, key, None) if self.mqtt.tls else None
                if tls_path is not None and not os.access(tls_path, os.R_OK):
                    issues.append(ConfigIssue(f"mqtt.tls.{key}", f"cannot read {tls_path}", self.source))
        if self.commanding.enabled:
            env = os.environ if environ is None else environ

            def station_token() -> None:
                if not env.get(self.commanding.api_token_env):
                    raise ConfigError([ConfigIssue(
                        "commanding.api_token_env", f"environment variable {self.commanding.api_token_env} is not set")])

            attempts.append(station_token)
            attempts += [lambda op=op: op.resolve_token(environ) for op in self.commanding.operators]
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


def _check_key_file(sc: SpacecraftConfig, index: int) -> None:
    from links.keyfiles import KeyFileError, read_key_file

    key = f"spacecraft[{index}].sdls_key_file"
    try:
        read_key_file(sc.sdls_key_file, sc.name).association(sc.sdls_spi)  # type: ignore[arg-type]
    except KeyFileError as exc:
        raise ConfigError([ConfigIssue(key, str(exc))]) from None
    except KeyError as exc:
        raise ConfigError([ConfigIssue(key, f"{sc.sdls_key_file}: {exc.args[0]}")]) from None


# ---------------------------------------------------------------------------- loading


def load_config(
    path: str | os.PathLike[str],
    *,
    known_spacecraft: Collection[str] | None = None,
    known_parameters: Callable[[str], Collection[str] | None] | None = None,
) -> Config:
    """Load and validate the TOML file at ``path``.

    ``known_spacecraft``: the mission database's spacecraft names; when given, every
    spacecraft name in the file must be one of them.  ``known_parameters(spacecraft)``:
    that spacecraft's parameter names (or None if unknown), to check limit overrides.
    Relative paths in the file (archive dir, token files, TLS files) are relative to
    the file's directory.
    """
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
    v = _Validator(text, source, Path(base_dir), known_spacecraft, known_parameters)
    config = v.config(data)
    if v.issues:
        raise ConfigError(v.issues)
    return config


# ---------------------------------------------------------------------------- where keys are (for line numbers)

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _format_key(part: str) -> str:
    return part if _BARE.fullmatch(part) else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_key(text: str) -> tuple[list[str], int] | None:
    """Parse a (dotted, maybe quoted) TOML key at the start of ``text``: (parts, end)."""
    parts: list[str] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] in "\"'":
            quote = text[pos]
            end = text.find(quote, pos + 1)
            if end < 0:
                return None
            raw = text[pos + 1 : end]
            parts.append(raw.encode().decode("unicode_escape") if quote == '"' and "\\" in raw else raw)
            pos = end + 1
        else:
            m = _BARE.match(text, pos)
            if not m:
                return None
            parts.append(m.group())
            pos = m.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ".":
            pos += 1
            continue
        return parts, pos


def _locate_keys(text: str) -> dict[str, int]:
    """Dotted key path -> line number, found by reading the TOML text line by line.

    Not a TOML parser: good enough to point at tables, array-of-tables elements and
    ``key = value`` lines, which is where errors are.
    """
    where: dict[str, int] = {}
    counts: dict[str, int] = {}
    current = ""
    in_multiline: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if in_multiline:
            if in_multiline in s:
                in_multiline = None
            continue
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            array = s.startswith("[[")
            parsed = _split_key(s[2 if array else 1 :])
            if not parsed:
                continue
            path = ""
            for i, part in enumerate(parsed[0]):
                path = f"{path}.{_format_key(part)}" if path else _format_key(part)
                last = i == len(parsed[0]) - 1
                if array and last:
                    counts[path] = counts.get(path, 0) + 1
                    path = f"{path}[{counts[path] - 1}]"
                elif path in counts:
                    path = f"{path}[{counts[path] - 1}]"
            current = path
            where.setdefault(current, lineno)
            continue
        parsed = _split_key(s)
        if not parsed or parsed[1] >= len(s) or s[parsed[1]] != "=":
            continue
        key = ".".join(_format_key(p) for p in parsed[0])
        where.setdefault(f"{current}.{key}" if current else key, lineno)
        rest = s[parsed[1] + 1 :]
        for quote in ('"""', "'''"):
            if rest.count(quote) == 1:
                in_multiline = quote
    return where


# ---------------------------------------------------------------------------- validation

_MISSING = object()
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _type_name(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


class _Validator:
    def __init__(self, text, source, base_dir: Path, known_spacecraft, known_parameters) -> None:
        self.source = source
        self.base_dir = base_dir
        self.known_spacecraft = None if known_spacecraft is None else set(known_spacecraft)
        self.known_parameters = known_parameters
        self.issues: list[ConfigIssue] = []
        self._where = _locate_keys(text)

    # -- reporting --

    def line_of(self, key: str) -> int | None:
        probe = key
        while probe:
            if probe in self._where:
                return self._where[probe]
            # A table only ever named as a prefix ([limits.sc.param] for limits.sc): its first mention.
            inner = [n for k, n in self._where.items() if k.startswith((probe + ".", probe + "["))]
            if inner:
                return min(inner)
            # links[2].url -> links[2] -> links ; a.b[3] -> a.b
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None

    def error(self, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(key, message, self.source, self.line_of(key)))

    # -- primitive readers: return the value, or the default after reporting an issue --

    def table(self, data: dict, key: str, path: str) -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.error(path, f"expected a table ([{path}]), got {_type_name(value)}")
            return {}
        return value

    def unknown(self, data: dict, path: str, allowed: Collection[str]) -> None:
        for key in data:
            if key not in allowed:
                sub = f"{path}.{_format_key(key)}" if path else _format_key(key)
                self.error(sub, f"unknown key; allowed here: {', '.join(allowed)}")

    def get(self, data: dict, path: str, key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        full = f"{path}.{key}" if path else key
        if key not in data:
            if default is _MISSING:
                self.error(full, "required key is missing")
                return None
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            want = " or ".join(_type_name(k()) if k in (bool, int, float, str, list, dict) else k.__name__ for k in kinds)
            self.error(full, f"expected {want}, got {_type_name(value)} {value!r}")
            return None if default is _MISSING else default
        return value

    def choice(self, data: dict, path: str, key: str, allowed: Collection[str], default: str) -> str:
        value = self.get(data, path, key, str, default)
        if value is not None and value not in allowed:
            self.error(f"{path}.{key}", f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
            return default
        return value

    def number(self, data, path, key, default, *, minimum=None, exclusive=False, integer=False):
        value = self.get(data, path, key, int if integer else float, default)
        if value is None or value is default:
            return value
        if not math.isfinite(value):
            self.error(f"{path}.{key}", f"must be a finite number, not {value}")
            return default
        if minimum is not None and (value <= minimum if exclusive else value < minimum):
            self.error(f"{path}.{key}", f"must be {'>' if exclusive else '>='} {minimum}, not {value}")
            return default
        return value

    def size(self, data, path, key, default, *, minimum=1):
        """Bytes: an integer, or a string with a unit ("256MiB", "10GB")."""
        full = f"{path}.{key}"
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        elif isinstance(value, str) and (m := _SIZE.match(value)):
            n = int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
        else:
            self.error(full, f"expected a size in bytes: an integer or a string like \"256MiB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got {value!r}")
            return default
        if n < minimum:
            self.error(full, f"must be at least {minimum} bytes, not {n}" + ("; omit the key for no limit" if n == 0 else ""))
            return default
        return n

    def duration(self, data, path, key, default, *, allow_zero=False):
        """Seconds: a number, or a string with a unit ("500ms", "30s", "15m", "12h", "30d")."""
        full = f"{path}.{key}"
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            s = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            s = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        else:
            self.error(full, f"expected a duration: seconds as a number, or a string like \"30s\", \"15m\", \"12h\", \"30d\", got {value!r}")
            return default
        if not math.isfinite(s) or s < 0 or (s == 0 and not allow_zero):
            self.error(full, f"must be a positive duration, not {value!r}" + ("; omit the key for no limit" if s == 0 else ""))
            return default
        return s

    def path_value(self, data, path, key) -> Path | None:
        value = self.get(data, path, key, str, None)
        if value is None:
            return None
        if not value:
            self.error(f"{path}.{key}", "must not be empty")
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def env_name(self, data, path, key, default=None) -> str | None:
        value = self.get(data, path, key, str, default)
        if value is not None and not _ENV_NAME.match(value):
            self.error(f"{path}.{key}", f"{value!r} is not an environment variable name (letters, digits, _)")
            return default
        return value

    def name(self, data, path, key="name") -> str:
        value = self.get(data, path, key, str)
        if value is not None and not _NAME.match(value):
            self.error(f"{path}.{key}", f"{value!r}: use letters, digits, '_', '-', '.' (starting with a letter or digit)")
        return value or ""

    def array_of_tables(self, data: dict, key: str) -> list[tuple[str, dict]]:
        value = data.get(key, [])
        if isinstance(value, dict):
            value = [value]  # [key] written instead of [[key]]: accept a single one
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.error(key, f"expected an array of tables ([[{key}]]), got {_type_name(value)}")
            return []
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]

    # -- sections --

    def config(self, data: dict) -> Config:
        self.unknown(data, "", ("station", "links", "spacecraft", "metrics", "mqtt", "archive", "limits", "commanding"))
        station = self.station(self.table(data, "station", "station"))
        spacecraft = self.spacecraft(data)
        names = {s.name for s in spacecraft}
        links = self.links(data, names)
        return Config(
            station=station,
            links=links,
            spacecraft=spacecraft,
            metrics=self.metrics(self.table(data, "metrics", "metrics")),
            mqtt=self.mqtt(self.table(data, "mqtt", "mqtt")),
            archive=self.archive(self.table(data, "archive", "archive")),
            limits=self.limits(self.table(data, "limits", "limits"), names),
            commanding=self.commanding(self.table(data, "commanding", "commanding")),
            source=self.source,
        )

    def station(self, t: dict) -> StationConfig:
        p = "station"
        self.unknown(t, p, ("name", "http_listen", "log_level"))
        d = StationConfig()
        name = self.get(t, p, "name", str, d.name)
        listen = self.get(t, p, "http_listen", str, d.http_listen)
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            self.error(f"{p}.http_listen", f"{listen!r} must be HOST:PORT, e.g. 127.0.0.1:9108 or [::1]:9108")
            listen = d.http_listen
        level = self.get(t, p, "log_level", str, d.log_level)
        if level.upper() not in LOG_LEVELS:
            self.error(f"{p}.log_level", f"{level!r} is not a log level; use one of: {', '.join(LOG_LEVELS)}")
            level = d.log_level
        return StationConfig(name, listen, level.upper())

    def links(self, data: dict, spacecraft_names: set[str]) -> tuple[LinkConfig, ...]:
        out = []
        seen: dict[str, str] = {}
        allowed = ("name", "url", "format", "spacecraft", "enabled", "reconnect_min_s", "reconnect_max_s")
        for p, t in self.array_of_tables(data, "links"):
            self.unknown(t, p, allowed)
            name = self.name(t, p)
            if name in seen:
                self.error(f"{p}.name", f"link name {name!r} is already used by {seen[name]}")
            seen.setdefault(name, p)
            raw_url = self.get(t, p, "url", str)
            url = None
            if raw_url is not None:
                try:
                    url = parse_link_url(raw_url)
                except LinkUrlError as exc:
                    self.error(f"{p}.url", str(exc))
            fmt = self.choice(t, p, "format", FRAME_FORMATS, None)
            if url is not None:
                # A byte stream has no message boundaries: the frame chain needs ASM-delimited CADUs.
                if fmt is None:
                    fmt = "frames" if url.framing == "datagram" else "cadu"
                elif fmt == "frames" and url.framing == "stream":
                    self.error(f"{p}.format", f"a {url.scheme} link is a byte stream and carries CADUs; use format = \"cadu\" "
                               "(\"frames\" needs a message-based link: udp, mqtt)")
            sc = self.get(t, p, "spacecraft", str, None)
            if sc is not None and sc not in spacecraft_names:
                declared = ", ".join(sorted(spacecraft_names)) or "none declared"
                self.error(f"{p}.spacecraft", f"{sc!r} is not a [[spacecraft]] of this station ({declared})")
            enabled = self.get(t, p, "enabled", bool, True)
            lo = self.duration(t, p, "reconnect_min_s", 0.5)
            hi = self.duration(t, p, "reconnect_max_s", 30.0)
            if lo > hi:
                self.error(f"{p}.reconnect_max_s", f"must be >= reconnect_min_s ({lo}), not {hi}")
            if url is not None:
                out.append(LinkConfig(name, url, fmt, sc, enabled, lo, hi))
        return tuple(out)

    def spacecraft(self, data: dict) -> tuple[SpacecraftConfig, ...]:
        out = []
        seen: dict[str, str] = {}
        for p, t in self.array_of_tables(data, "spacecraft"):
            self.unknown(t, p, ("name", "enabled", "light_time_s", "uplink", "tc_vcid", "sdls_key_file", "sdls_spi"))
            name = self.get(t, p, "name", str)
            if name is None:
                continue
            if self.known_spacecraft is not None and name not in self.known_spacecraft:
                known = ", ".join(sorted(self.known_spacecraft)) or "none"
                self.error(f"{p}.name", f"{name!r} is not in the mission database; known spacecraft: {known}")
            if name in seen:
                self.error(f"{p}.name", f"spacecraft {name!r} is already configured by {seen[name]}")
            seen.setdefault(name, p)
            enabled = self.get(t, p, "enabled", bool, True)
            light = self.duration(t, p, "light_time_s", None, allow_zero=True)
            uplink = None
            raw_uplink = self.get(t, p, "uplink", str, None)
            if raw_uplink is not None:
                try:
                    uplink = parse_link_url(raw_uplink)
                except LinkUrlError as exc:
                    self.error(f"{p}.uplink", str(exc))
                else:
                    if uplink.scheme == "file":
                        self.error(f"{p}.uplink", "a file cannot carry telecommands to a spacecraft; "
                                   "use udp, tcp, tcp-listen, serial or mqtt")
            tc_vcid = self.number(t, p, "tc_vcid", 0, minimum=0, integer=True)
            if tc_vcid is not None and tc_vcid > 63:
                self.error(f"{p}.tc_vcid", f"a TC virtual channel is 0..63, not {tc_vcid}")
            # Only the key file's path is configuration: keys in this file would be readable by whoever reads it.
            key_file = self.path_value(t, p, "sdls_key_file")
            spi = self.number(t, p, "sdls_spi", None, minimum=1, integer=True)
            if spi is not None and spi > 65534:
                self.error(f"{p}.sdls_spi", f"an SPI is 1..65534, not {spi}")
            if spi is not None and key_file is None:
                self.error(f"{p}.sdls_spi", "needs sdls_key_file (the file that holds this SA's key)")
            out.append(SpacecraftConfig(name, enabled, light, uplink, tc_vcid or 0, key_file, spi))
        return tuple(out)

    def metrics(self, t: dict) -> MetricsConfig:
        p = "metrics"
        self.unknown(t, p, ("enabled", "latency_buckets"))
        enabled = self.get(t, p, "enabled", bool, True)
        buckets = self.get(t, p, "latency_buckets", list, None)
        if buckets is not None:
            good = all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and b > 0 for b in buckets)
            if not buckets or not good:
                self.error(f"{p}.latency_buckets", "must be a non-empty array of positive numbers (seconds)")
                buckets = None
            elif any(b >= c for b, c in zip(buckets, buckets[1:])):
                self.error(f"{p}.latency_buckets", "must be strictly increasing")
                buckets = None
            else:
                buckets = tuple(float(b) for b in buckets)
        return MetricsConfig(enabled, buckets)

    def mqtt(self, t: dict) -> MqttConfig:
        p = "mqtt"
        allowed = ("enabled", "url", "username", "password", "password_env", "tls", "topic_prefix", "qos",
                   "rate_limit_hz", "publish_on_change", "buffer_size")
        self.unknown(t, p, allowed)
        d = MqttConfig()
        enabled = self.get(t, p, "enabled", bool, d.enabled)
        url = self.get(t, p, "url", str, d.url)
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or 0 < parts.port <= 65535
        except ValueError:
            port_ok = False
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or not port_ok or parts.path not in ("", "/") \
                or parts.query or parts.password or parts.username:
            self.error(f"{p}.url", f"{url!r} must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT] "
                       "(no path, query or credentials: use topic_prefix, username, password_env)")
            url = d.url
        username = self.get(t, p, "username", str, None)
        password = self.get(t, p, "password", str, None)
        password_env = self.env_name(t, p, "password_env")
        if password is not None and password_env is not None:
            self.error(f"{p}.password", "give password or password_env, not both")
        tls = None
        if "tls" in t:
            tt = self.table(t, "tls", f"{p}.tls")
            self.unknown(tt, f"{p}.tls", ("ca", "cert", "key"))
            tls = MqttTlsConfig(*(self.path_value(tt, f"{p}.tls", k) for k in ("ca", "cert", "key")))
            if (tls.cert is None) != (tls.key is None):
                self.error(f"{p}.tls", "cert and key go together (a client certificate needs its key)")
            if parts.scheme == "mqtt":
                self.error(f"{p}.tls", "TLS settings need an mqtts:// url (mqtt.url is plain mqtt://)")
        elif parts.scheme == "mqtts":
            tls = MqttTlsConfig()  # system CAs
        prefix = self.get(t, p, "topic_prefix", str, d.topic_prefix)
        if not prefix or any(c in prefix for c in "+#\0") or prefix.startswith("/") or prefix.endswith("/"):
            self.error(f"{p}.topic_prefix", f"{prefix!r}: a non-empty topic without wildcards (+, #) or leading/trailing '/'")
            prefix = d.topic_prefix
        qos = self.get(t, p, "qos", int, d.qos)
        if qos not in (0, 1, 2):
            self.error(f"{p}.qos", f"must be 0, 1 or 2, not {qos}")
            qos = d.qos
        rate = self.number(t, p, "rate_limit_hz", d.rate_limit_hz, minimum=0, exclusive=True)
        on_change = self.get(t, p, "publish_on_change", bool, d.publish_on_change)
        buffer_size = self.number(t, p, "buffer_size", d.buffer_size, minimum=0, integer=True)
        return MqttConfig(enabled, url, username, password, password_env, tls, prefix, qos, rate, on_change, buffer_size)

    def archive(self, t: dict) -> ArchiveConfig:
        p = "archive"
        self.unknown(t, p, ("dir", "fsync", "fsync_interval_s", "segment_max_bytes", "segment_max_age_s",
                            "retention_max_bytes", "retention_max_age_s"))
        d = ArchiveConfig()
        directory = self.path_value(t, p, "dir") or d.dir
        fsync = self.choice(t, p, "fsync", FSYNC_POLICIES, d.fsync)
        interval = self.duration(t, p, "fsync_interval_s", d.fsync_interval_s)
        seg_bytes = self.size(t, p, "segment_max_bytes", d.segment_max_bytes, minimum=64 * 1024)
        seg_age = self.duration(t, p, "segment_max_age_s", d.segment_max_age_s)
        ret_bytes = self.size(t, p, "retention_max_bytes", None)
        ret_age = self.duration(t, p, "retention_max_age_s", None)
        if ret_bytes is not None and seg_bytes is not None and ret_bytes < 2 * seg_bytes:
            self.error(f"{p}.retention_max_bytes",
                       f"must be at least twice segment_max_bytes ({seg_bytes}); retention deletes whole segments")
        if "fsync_interval_s" in t and fsync != "interval":
            self.error(f"{p}.fsync_interval_s", f"only applies with fsync = \"interval\" (fsync is {fsync!r})")
        return ArchiveConfig(directory, fsync, interval, seg_bytes, seg_age, ret_bytes, ret_age)

    def limits(self, t: dict, spacecraft_names: set[str]) -> tuple[LimitOverride, ...]:
        out = []
        for sc, params in t.items():
            sp = f"limits.{_format_key(sc)}"
            if not isinstance(params, dict):
                self.error(sp, f"expected a table of parameters ([limits.{_format_key(sc)}.PARAMETER]), got {_type_name(params)}")
                continue
            if sc not in spacecraft_names:
                declared = ", ".join(sorted(spacecraft_names)) or "none declared"
                self.error(sp, f"{sc!r} is not a [[spacecraft]] of this station ({declared})")
            known = self.known_parameters(sc) if self.known_parameters else None
            for param, lim in params.items():
                p = f"{sp}.{_format_key(param)}"
                if not isinstance(lim, dict):
                    self.error(p, f"expected a table with warning/critical/persistence/hysteresis, got {_type_name(lim)}")
                    continue
                if known is not None and param not in known:
                    self.error(p, f"{sc} has no parameter {param!r}")
                self.unknown(lim, p, ("warning", "critical", "persistence", "hysteresis"))
                warning = self.bounds(lim, p, "warning")
                critical = self.bounds(lim, p, "critical")
                if warning and critical:
                    (wl, wh), (cl, ch) = warning, critical
                    if (cl is not None and (wl is None or wl < cl)) or (ch is not None and (wh is None or wh > ch)):
                        self.error(f"{p}.critical", f"the critical range {list(critical)} must contain the warning range {list(warning)}")
                persistence = self.number(lim, p, "persistence", None, minimum=1, integer=True)
                hysteresis = self.number(lim, p, "hysteresis", None, minimum=0)
                if not lim:
                    self.error(p, "overrides nothing; give warning, critical, persistence or hysteresis")
                out.append(LimitOverride(sc, param, warning, critical, persistence, hysteresis))
        return tuple(out)

    def bounds(self, t: dict, path: str, key: str) -> Bounds:
        """[low, high] (either may be -inf/inf for "none") or {low = .., high = ..}."""
        if key not in t:
            return None
        value = t[key]
        full = f"{path}.{key}"
        if isinstance(value, dict):
            before = len(self.issues)
            self.unknown(value, full, ("low", "high"))
            if len(self.issues) > before:
                return None
            lo, hi = value.get("low"), value.get("high")
        elif isinstance(value, list) and len(value) == 2:
            lo, hi = value
        else:
            self.error(full, f"expected [low, high] or {{ low = .., high = .. }}, got {value!r}")
            return None
        out: list[float | None] = []
        for b in (lo, hi):
            if b is None or (isinstance(b, float) and math.isinf(b)):
                out.append(None)
            elif isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b):
                out.append(float(b))
            else:
                self.error(full, f"bounds must be numbers (use -inf/inf for no bound), got {b!r}")
                return None
        if out[0] is None and out[1] is None:
            self.error(full, "needs at least one finite bound")
            return None
        if out[0] is not None and out[1] is not None and out[0] > out[1]:
            self.error(full, f"low ({out[0]}) is above high ({out[1]})")
            return None
        return (out[0], out[1])

    def commanding(self, t: dict) -> CommandingConfig:
        p = "commanding"
        self.unknown(t, p, ("enabled", "api_token_env", "allow_inline_tokens", "operators", "fop_window",
                            "fop_timeout_s", "fop_transmission_limit", "verification_timeout_s", "history_file"))
        fop_window = self.number(t, p, "fop_window", 5, minimum=1, integer=True)
        if fop_window > 127:
            self.error(f"{p}.fop_window", f"must be 1..127 (half the 8-bit sequence space), not {fop_window}")
        fop_timeout = self.duration(t, p, "fop_timeout_s", 2.0)
        fop_limit = self.number(t, p, "fop_transmission_limit", 5, minimum=1, integer=True)
        verification = self.duration(t, p, "verification_timeout_s", 60.0)
        history_file = self.path_value(t, p, "history_file")
        enabled = self.get(t, p, "enabled", bool, False)
        api_env = self.env_name(t, p, "api_token_env", DEFAULT_API_TOKEN_ENV)
        inline_ok = self.get(t, p, "allow_inline_tokens", bool, False)
        operators = []
        seen: dict[str, str] = {}
        for op_path, ot in self.array_of_tables(t, "operators"):
            op_path = f"{p}.{op_path}"
            self.unknown(ot, op_path, ("name", "role", "token_env", "token_file", "token"))
            name = self.name(ot, op_path)
            if name in seen:
                self.error(f"{op_path}.name", f"operator {name!r} is already defined by {seen[name]}")
            seen.setdefault(name, op_path)
            role = self.get(ot, op_path, "role", str)
            if role is not None and role not in ROLES:
                self.error(f"{op_path}.role", f"{role!r} is not a role; use one of: {', '.join(ROLES)}")
            token_env = self.env_name(ot, op_path, "token_env")
            token_file = self.path_value(ot, op_path, "token_file")
            token = self.get(ot, op_path, "token", str, None)
            if token is not None and not inline_ok:
                self.error(f"{op_path}.token", "inline tokens are refused (the file may be readable by others); "
                           "use token_env or token_file, or set commanding.allow_inline_tokens = true")
            given = [k for k, v in (("token_env", token_env), ("token_file", token_file), ("token", token)) if v is not None]
            if len(given) != 1:
                self.error(op_path, f"give exactly one of token_env or token_file (got {', '.join(given) or 'none'})")
            operators.append(OperatorConfig(name, role or "viewer", token_env, token_file, token))
        return CommandingConfig(enabled, api_env, inline_ok, tuple(operators), fop_window, fop_timeout, fop_limit,
                                verification, history_file)


# ---------------------------------------------------------------------------- command line


def add_parser(subparsers) -> None:
    """`groundstation check-config FILE`: validate a configuration and exit 0, or print every error."""
    parser = subparsers.add_parser("check-config", help="validate a ground-station configuration file")
    parser.add_argument("file")
    parser.add_argument("--secrets", action="store_true", help="also resolve tokens and passwords (env, files)")
    parser.set_defaults(func=_check_config)


def _check_config(args) -> int:
    import sys

    try:
        config = load_config(args.file)
        if args.secrets:
            config.check_secrets()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"{args.file}: OK ({len(config.links)} links, {len(config.spacecraft)} spacecraft)\n")
    return 0
