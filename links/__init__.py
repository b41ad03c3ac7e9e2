"""Transports shared by both programs: UDP, TCP, serial, file and MQTT links.

The emulator's downlink and the ground station's link-in are the same
transports seen from the two ends, so they live here once rather than twice.
Frames are bytes at this level: framing (ASM, randomization) and decoding
belong to ``protocols``; what a link carries is the caller's business.

    async with open_link("udp://127.0.0.1:10015", role="out") as link:
        link.send(frame)
"""
from __future__ import annotations

from links.base import Backoff, Link, LinkClosed, LinkStats
from links.transports import FileLink, MqttLink, SerialLink, TcpClientLink, TcpServerLink, UdpLink
from links.url import LinkUrl, LinkUrlError, parse_link_url

__all__ = [
    "Backoff", "Link", "LinkClosed", "LinkStats", "LinkUrl", "LinkUrlError", "parse_link_url", "open_link",
    "mqtt_topic",
]


def mqtt_topic(prefix: str, spacecraft: str, direction: str) -> str:
    """``<prefix>/<spacecraft>/downlink`` or ``.../uplink``."""
    if direction not in ("downlink", "uplink"):
        raise ValueError(f"direction is 'downlink' or 'uplink', not {direction!r}")
    return f"{prefix}/{spacecraft}/{direction}"


def open_link(url: str | LinkUrl, *, role: str, spacecraft: str | None = None, end: str | None = None,
              **kwargs) -> Link:
    """A link for ``url``; enter it with ``async with``.

    ``role``: "in" for the receiving end, "out" for the sending end (UDP binds
    for "in", files are read for "in").  For MQTT, ``spacecraft`` and ``end``
    pick the topics: the spacecraft's end publishes ``<prefix>/<sc>/downlink``
    and reads ``<prefix>/<sc>/uplink``; the ground's end does the opposite.
    ``end`` defaults to "ground" for role "in" and "spacecraft" for role "out";
    a ground station's uplink is role "out" at the ground end.  A ground station
    that takes every spacecraft passes ``spacecraft="+"`` (an MQTT wildcard).
    """
    if role not in ("in", "out"):
        raise ValueError(f"role is 'in' or 'out', not {role!r}")
    end = end or ("ground" if role == "in" else "spacecraft")
    if end not in ("ground", "spacecraft"):
        raise ValueError(f"end is 'ground' or 'spacecraft', not {end!r}")
    spec = url if isinstance(url, LinkUrl) else parse_link_url(url)
    if spec.scheme == "udp":
        return UdpLink(spec, role=role, **kwargs)
    if spec.scheme == "tcp":
        return TcpClientLink(spec, **kwargs)
    if spec.scheme == "tcp-listen":
        return TcpServerLink(spec, **kwargs)
    if spec.scheme == "serial":
        return SerialLink(spec, **kwargs)
    if spec.scheme == "file":
        return FileLink(spec, role=role, **kwargs)
    if spacecraft is None:
        raise LinkUrlError(f"link {spec}: an MQTT link needs the spacecraft name to pick its topics")
    receive, send = ("downlink", "uplink") if end == "ground" else ("uplink", "downlink")
    publish = None if spacecraft == "+" else mqtt_topic(spec.path, spacecraft, send)
    # A send-only MQTT link subscribes to nothing rather than dropping what it would receive.
    subscribe = (mqtt_topic(spec.path, spacecraft, receive),) if kwargs.get("receive", True) else ()
    return MqttLink(spec, publish_topic=publish, subscribe_topics=subscribe, **kwargs)
