"""Link URLs, as given on the command line and in the daemon's configuration.

    udp://HOST:PORT                  one frame per datagram
    tcp://HOST:PORT                  TCP client, CADU stream
    tcp-listen://HOST:PORT           TCP server, CADU stream (to every connected client)
    serial:///dev/ttyX?baud=115200   UART, CADU stream
    file:///path/to/capture.cadu     CADU stream written to / read from a file
    mqtt://HOST:PORT/PREFIX          one frame per message on PREFIX/<spacecraft>/downlink|uplink
    mqtts://HOST:PORT/PREFIX         the same over TLS

IPv6 hosts go in brackets: ``udp://[::1]:10015``.  Secrets never go in a URL:
MQTT credentials come from ``?username=NAME&password_env=VARIABLE``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

SCHEMES = ("udp", "tcp", "tcp-listen", "serial", "file", "mqtt", "mqtts")
DATAGRAM_SCHEMES = frozenset({"udp", "mqtt", "mqtts"})
DEFAULT_MQTT_PORT = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_BAUD = 115200

#: Query keys each scheme accepts (anything else is a typo and is refused).
_QUERY_KEYS = {
    "udp": set(),
    "tcp": set(),
    "tcp-listen": set(),
    "serial": {"baud"},
    "file": {"follow"},
    "mqtt": {"username", "password_env", "qos", "client_id"},
    "mqtts": {"username", "password_env", "qos", "client_id", "ca", "cert", "key"},
}


class LinkUrlError(ValueError):
    """A link URL that cannot be used; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class LinkUrl:
    raw: str
    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)

    @property
    def framing(self) -> str:
        """"datagram" (one frame per message) or "stream" (CADUs: ASM + frame, needs sync)."""
        return "datagram" if self.scheme in DATAGRAM_SCHEMES else "stream"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __str__(self) -> str:
        return self.raw


def parse_link_url(url: str) -> LinkUrl:
    """Parse and validate a link URL, with an error that names the problem."""
    if not isinstance(url, str) or "://" not in url:
        raise LinkUrlError(f"link URL {url!r} has no scheme; use one of: " + ", ".join(f"{s}://" for s in SCHEMES))
    if "#" in url:
        raise LinkUrlError(f"link URL {url!r}: '#' is not allowed (no fragments, no MQTT wildcards)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise LinkUrlError(f"link URL {url!r}: {exc} (IPv6 hosts are written [::1]:PORT)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise LinkUrlError(f"link URL {url!r}: unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - _QUERY_KEYS[scheme]
    if unknown:
        allowed = ", ".join(sorted(_QUERY_KEYS[scheme])) or "none"
        raise LinkUrlError(f"link URL {url!r}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    if parts.password:
        raise LinkUrlError(f"link URL for {parts.hostname}: put no password in a URL; use ?password_env=VARIABLE")

    if scheme in ("serial", "file"):
        if parts.netloc:
            raise LinkUrlError(f"link URL {url!r}: {scheme} takes a path with three slashes, e.g. {scheme}:///dev/ttyUSB0")
        if not parts.path or parts.path == "/":
            raise LinkUrlError(f"link URL {url!r}: {scheme} needs a path")
        if scheme == "serial":
            baud = query.get("baud", str(DEFAULT_BAUD))
            if not baud.isdigit() or int(baud) <= 0:
                raise LinkUrlError(f"link URL {url!r}: baud must be a positive integer, not {baud!r}")
            query["baud"] = baud
        return LinkUrl(url, scheme, path=parts.path, query=query)

    host = parts.hostname or ""
    if not host:
        raise LinkUrlError(f"link URL {url!r}: needs a host, e.g. {scheme}://127.0.0.1:10015")
    try:
        port = parts.port
    except ValueError:
        raise LinkUrlError(f"link URL {url!r}: the port must be a number in 1..65535") from None
    if port is None:
        port = DEFAULT_MQTT_PORT.get(scheme)
    if port is None:
        raise LinkUrlError(f"link URL {url!r}: needs a port, e.g. {scheme}://{host}:10015")
    if scheme in ("mqtt", "mqtts"):
        prefix = parts.path.strip("/")
        if not prefix or "#" in prefix or "+" in prefix:
            raise LinkUrlError(f"link URL {url!r}: MQTT needs a topic prefix without wildcards, e.g. mqtt://{host}:{port}/queqiao")
        if "qos" in query and query["qos"] not in {"0", "1", "2"}:
            raise LinkUrlError(f"link URL {url!r}: qos must be 0, 1 or 2")
        return LinkUrl(url, scheme, host=host, port=port, path=prefix, query=query)
    if parts.path not in ("", "/"):
        raise LinkUrlError(f"link URL {url!r}: {scheme} takes no path")
    return LinkUrl(url, scheme, host=host, port=port, query=query)
