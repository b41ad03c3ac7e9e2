"""Real Mosquitto, Prometheus and NATS server processes for tests: private instances on free loopback ports.

Used through the fixtures in tests/realcomponents/conftest.py; importable on its own
(``from components import Mosquitto, Prometheus``) for scripts that need the same.
Every wait is bounded; every process is stopped (terminate, then kill) at teardown.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MOSQUITTO = ("mosquitto", "/usr/sbin/mosquitto", "mosquitto")  # command, Debian path, Debian package
MOSQUITTO_PASSWD = ("mosquitto_passwd", "/usr/bin/mosquitto_passwd", "mosquitto")
PROMETHEUS = ("prometheus", "/usr/bin/prometheus", "prometheus")
NATS_SERVER = ("nats-server", "/usr/sbin/nats-server", "nats-server")
VICTORIA_METRICS = ("victoria-metrics", "/usr/bin/victoria-metrics", "victoria-metrics")


class ComponentError(RuntimeError):
    """A real component did not start or answer; the message carries the tail of its log."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def find_binary(command: str, debian_path: str) -> str | None:
    return shutil.which(command) or (debian_path if os.access(debian_path, os.X_OK) else None)


def require_binary(spec: tuple[str, str, str]) -> str:
    """The binary's path; if missing: fail under CI (CI=true), else skip with the apt command."""
    command, debian_path, package = spec
    path = find_binary(command, debian_path)
    if path:
        return path
    message = (f"{command} not found (looked in PATH and {debian_path}); install it with "
               f"`sudo apt-get install {package}` or run scripts/ensure-system-deps.sh as root")
    if in_ci():
        pytest.fail(f"CI=true and a real component is missing: {message}", pytrace=False)
    pytest.skip(message)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the OS picks; racy in theory, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "condition",
               alive: Callable[[], None] | None = None) -> object:
    """Poll ``predicate`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# Every process the helpers start, as (pid, start time): tests/conftest.py fails the run
# when one of them is still running at the end of the session.
SPAWNED: set[tuple[int, str]] = set()


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class _Process:
    """A child process with a log file, started by :meth:`start` and stopped by :meth:`stop`."""

    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def _spawn(self, argv: list[str]) -> None:
        if self.running:
            raise ComponentError(f"{self.name} (pid {self.proc.pid}) is already running: start() it once")
        with open(self.log_path, "ab") as logfile:
            self.proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, start_new_session=True)
        SPAWNED.add((self.proc.pid, process_start_time(self.proc.pid) or "?"))
        log.info("started %s (pid %d): %s", self.name, self.proc.pid, " ".join(argv))

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ComponentError(f"{self.name} exited with status {self.proc.returncode}; its log:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return _tail(self.log_path, 200)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0):  # pragma: no cover - overridden
        raise NotImplementedError


class Mosquitto(_Process):
    """A private Mosquitto broker listening on 127.0.0.1 only.

    ``users``: name -> password, written with mosquitto_passwd (then anonymous access is
    off unless ``allow_anonymous=True`` is passed explicitly); ``acl``: the text of an
    ACL file; ``extra_config``: more mosquitto.conf lines.
    """

    name = "mosquitto"

    def __init__(self, workdir: Path, *, port: int | None = None, allow_anonymous: bool | None = None,
                 users: Mapping[str, str] | None = None, acl: str | None = None, extra_config: Iterable[str] = (),
                 binary: str | None = None) -> None:
        super().__init__(workdir)
        self.binary = binary or require_binary(MOSQUITTO)
        self.host = LOOPBACK
        self.port = port or free_port()
        self.users = dict(users or {})
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.acl = acl
        self.extra_config = list(extra_config)
        self.config_path = self.workdir / "mosquitto.conf"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence false",
            "log_dest stderr",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to "mosquitto", which cannot read our private tmp dir
        if self.users:
            passwd = require_binary(MOSQUITTO_PASSWD)
            pw_file = self.workdir / "passwords"
            pw_file.write_text("")
            pw_file.chmod(0o600)
            for user, password in self.users.items():
                subprocess.run([passwd, "-b", str(pw_file), user, password], check=True, timeout=30,
                               capture_output=True)
            lines.append(f"password_file {pw_file}")
        if self.acl is not None:
            acl_file = self.workdir / "acl"
            acl_file.write_text(self.acl)
            acl_file.chmod(0o600)
            lines.append(f"acl_file {acl_file}")
        lines += self.extra_config
        self.config_path.write_text("\n".join(lines) + "\n")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 15.0) -> Mosquitto:
        self._write_config()
        self._spawn([self.binary, "-c", str(self.config_path)])
        try:
            wait_until(self._accepts, timeout=timeout, what=f"mosquitto accepting on {self.host}:{self.port}",
                       alive=self.check_alive)
        except (TimeoutError, ComponentError) as exc:
            self.stop()
            raise ComponentError(f"{exc}\nmosquitto log:\n{_tail(self.log_path)}") from None
        return self


class _PromQL:
    """The Prometheus HTTP query API, which Prometheus and VictoriaMetrics both serve."""

    name: str
    url: str
    check_alive: Callable[[], None]

    def _get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/<path> and return its ``data``; raise on an error status."""
        query = urllib.parse.urlencode(params)
        status, body = self._get(f"/api/v1/{path}" + (f"?{query}" if query else ""))
        doc = json.loads(body or b"{}")
        if status != 200 or doc.get("status") != "success":
            raise ComponentError(f"{self.name} /api/v1/{path} {params}: HTTP {status}: {doc.get('error', body[:200])}")
        return doc["data"]

    def query(self, promql: str) -> list[dict]:
        """Instant query: the result list ([{"metric": {...}, "value": [ts, "v"]}, ...] for a vector)."""
        data = self.api("query", query=promql)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_value(self, promql: str) -> float | None:
        """The value of the first series of an instant query, or None if there is none."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for_value(self, promql: str, predicate: Callable[[float], bool] | None = None, *,
                       timeout: float = 20.0) -> float:
        """Poll ``promql`` until it has a value (satisfying ``predicate``), at most ``timeout`` s."""
        def probe():
            self.check_alive()
            v = self.query_value(promql)
            return (v,) if v is not None and (predicate is None or predicate(v)) else None

        try:
            return wait_until(probe, timeout=timeout, interval=0.25, what=f"a value for {promql!r}")[0]
        except TimeoutError as exc:
            raise ComponentError(f"{exc}; {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        return f"{self.name} log:\n{_tail(Path(getattr(self, 'log_path', '')), 20)}"


class Prometheus(_PromQL, _Process):
    """A private Prometheus on 127.0.0.1 scraping ``targets`` ("host:port") every ``scrape_interval``."""

    name = "prometheus"

    def __init__(self, workdir: Path, targets: Iterable[str], *, scrape_interval: str = "1s", port: int | None = None,
                 job: str = "queqiao", metrics_path: str = "/metrics", rule_files: Iterable[str] = (),
                 binary: str | None = None, extra_args: Iterable[str] = ()) -> None:
        """``extra_args``: more command-line flags, e.g. ``--web.enable-remote-write-receiver``."""
        super().__init__(workdir)
        self.binary = binary or require_binary(PROMETHEUS)
        self.extra_args = list(extra_args)
        self.targets = list(targets)
        for t in self.targets:
            host = t.rpartition(":")[0].strip("[]")
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise ValueError(f"test Prometheus scrapes loopback targets only, not {t!r}")
        self.scrape_interval = scrape_interval
        self.job = job
        self.metrics_path = metrics_path
        self.rule_files = list(rule_files)
        self.host = LOOPBACK
        self.port = port or free_port()
        self.config_path = self.workdir / "prometheus.yml"
        self.storage = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _write_config(self) -> None:
        # JSON is YAML: no YAML library needed.
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval},
            "rule_files": self.rule_files,
            "scrape_configs": [{
                "job_name": self.job,
                "scrape_interval": self.scrape_interval,
                "metrics_path": self.metrics_path,
                "static_configs": [{"targets": self.targets}],
            }],
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _ready(self) -> bool:
        try:
            status, _body = self._get("/-/ready", timeout=1.0)
        except OSError:
            return False
        return status == 200

    def start(self, timeout: float = 30.0) -> Prometheus:
        self._write_config()
        self.storage.mkdir(exist_ok=True)
        self._spawn([
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage}",
            f"--web.listen-address={self.host}:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=info",
            *self.extra_args,
        ])
        try:
            wait_until(self._ready, timeout=timeout, interval=0.1, what=f"prometheus ready on {self.url}",
                       alive=self.check_alive)
        except (TimeoutError, ComponentError) as exc:
            self.stop()
            raise ComponentError(f"{exc}\nprometheus log:\n{_tail(self.log_path)}") from None
        return self

    def diagnosis(self) -> str:
        return f"targets: {self.target_health()}"

    def target_health(self) -> list[tuple[str, str, str]]:
        """(scrape URL, health, last error) of each active target: useful in failure messages."""
        try:
            data = self.api("targets")
        except (ComponentError, OSError) as exc:
            return [("?", "?", str(exc))]
        return [(t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in data["activeTargets"]]


class NatsServer(_Process):
    """A private nats-server with JetStream on 127.0.0.1, its store in its own directory.

    ``cluster_port`` and ``routes`` (other members' cluster ports) make it one node of a
    cluster; :class:`NatsCluster` starts three.  ``extra_config``: more nats-server.conf lines.
    """

    name = "nats-server"

    def __init__(self, workdir: Path, *, port: int | None = None, server_name: str = "n1",
                 cluster_name: str = "queqiao", cluster_port: int | None = None, routes: Iterable[int] = (),
                 extra_config: Iterable[str] = (), binary: str | None = None) -> None:
        super().__init__(workdir)
        self.binary = binary or require_binary(NATS_SERVER)
        self.host = LOOPBACK
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.server_name = server_name
        self.cluster_name = cluster_name
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self.extra_config = list(extra_config)
        self.config_path = self.workdir / "nats-server.conf"
        self.store = self.workdir / "jetstream"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _write_config(self) -> None:
        lines = [f"server_name: {self.server_name}", f"listen: {self.host}:{self.port}",
                 f"http: {self.host}:{self.monitor_port}",
                 f'jetstream {{ store_dir: "{self.store}", max_memory_store: 64MB, max_file_store: 1GB }}']
        if self.cluster_port is not None:
            routes = ", ".join(f"nats-route://{self.host}:{p}" for p in self.routes)
            lines.append(f"cluster {{ name: {self.cluster_name}, listen: {self.host}:{self.cluster_port}, "
                         f"routes: [{routes}] }}")
        lines += self.extra_config
        self.config_path.write_text("\n".join(lines) + "\n")

    def healthy(self) -> bool:
        """JetStream up (in a cluster: the meta group has a leader)."""
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.monitor_port}/healthz", timeout=1.0) as resp:
                return resp.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def launch(self) -> None:
        self.store.mkdir(exist_ok=True)
        self._write_config()
        self._spawn([self.binary, "-c", str(self.config_path)])

    def wait_ready(self, timeout: float = 30.0) -> None:
        try:
            wait_until(self.healthy, timeout=timeout, interval=0.1, what=f"nats-server {self.server_name} healthy",
                       alive=self.check_alive)
        except (TimeoutError, ComponentError) as exc:
            self.stop()
            raise ComponentError(f"{exc}\nnats-server log:\n{_tail(self.log_path)}") from None

    def start(self, timeout: float = 30.0) -> NatsServer:
        self.launch()
        self.wait_ready(timeout)
        return self

    def kill(self) -> None:
        """SIGKILL: a node lost without warning."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


class NatsCluster:
    """``size`` nats-server nodes with JetStream, clustered over loopback; ``.url`` lists every node."""

    def __init__(self, workdir: Path, size: int = 3, binary: str | None = None) -> None:
        binary = binary or require_binary(NATS_SERVER)
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [NatsServer(Path(workdir) / f"n{i + 1}", server_name=f"n{i + 1}", cluster_port=cluster_ports[i],
                                 routes=[p for j, p in enumerate(cluster_ports) if j != i], binary=binary)
                      for i in range(size)]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 60.0) -> NatsCluster:
        for node in self.nodes:  # all at once: each waits for the others' routes to elect a meta leader
            node.launch()
        try:
            for node in self.nodes:
                node.wait_ready(timeout)
        except ComponentError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
class VictoriaMetrics(_PromQL, _Process):
    """A private single-node VictoriaMetrics on 127.0.0.1: remote-write receiver at :attr:`write_url`,
    the Prometheus query API beside it."""

    name = "victoria-metrics"

    def __init__(self, workdir: Path, *, port: int | None = None, binary: str | None = None) -> None:
        super().__init__(workdir)
        self.binary = binary or require_binary(VICTORIA_METRICS)
        self.host = LOOPBACK
        self.port = port or free_port()
        self.storage = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def _ready(self) -> bool:
        try:
            status, _ = self._get("/health", timeout=1.0)
        except OSError:
            return False
        return status == 200

    def start(self, timeout: float = 30.0) -> VictoriaMetrics:
        self.storage.mkdir(exist_ok=True)
        self._spawn([
            self.binary, f"-storageDataPath={self.storage}", f"-httpListenAddr={self.host}:{self.port}",
            "-retentionPeriod=1d", "-search.disableCache",
            # Samples are queryable at once (the test checks counts right after writing), and old ones accepted.
            "-search.latencyOffset=0s", "-search.maxStalenessInterval=1h",
        ])
        try:
            wait_until(self._ready, timeout=timeout, interval=0.1, what=f"victoria-metrics ready on {self.url}",
                       alive=self.check_alive)
        except (TimeoutError, ComponentError) as exc:
            self.stop()
            raise ComponentError(f"{exc}\nvictoria-metrics log:\n{_tail(self.log_path)}") from None
        return self
