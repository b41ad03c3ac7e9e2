"""The NATS connection both sides share: connect with retries, and the per-spacecraft streams."""
from __future__ import annotations

import asyncio
import logging

import nats
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from groundstation.config import NetworkConfig
from groundstation.network.message import stream_name, subject

log = logging.getLogger("queqiao.network")


def connect_options(network: NetworkConfig) -> dict:
    options: dict = {"servers": [u.strip() for u in network.url.split(",")], "max_reconnect_attempts": -1,
                     "reconnect_time_wait": 0.5, "connect_timeout": 2, "allow_reconnect": True,
                     "ping_interval": 5, "max_outstanding_pings": 2}
    if network.username:
        options["user"] = network.username
        password = network.resolve_password()
        if password is not None:
            options["password"] = password
    if network.credentials_file is not None:
        options["user_credentials"] = str(network.credentials_file)
    if network.tls is not None:
        options["tls"] = network.tls.context()
    return options


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that a timeout swallowed.  In Python 3.11, ``asyncio.wait_for`` (which
    nats-py's calls use inside) can report a cancellation that arrives as its timeout fires as a
    timeout instead (python/cpython#86296, fixed in 3.12): a loop that retries on timeouts would
    then never stop, and the daemon's shutdown would wait for it for ever.  Every retry branch of
    the network tasks calls this first."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def connect(network: NetworkConfig, name: str, on_state=None):
    """A connected client; retries (doubling to 10 s) until the broker answers, logging each refusal once a try."""
    async def disconnected():
        log.warning("network: disconnected from %s", network.url)
        if on_state:
            on_state(False)

    async def reconnected():
        log.info("network: reconnected")
        if on_state:
            on_state(True)

    async def error(exc):
        log.debug("network: %s", exc)

    delay = 0.2
    while True:
        try:
            nc = await nats.connect(name=name, disconnected_cb=disconnected, reconnected_cb=reconnected,
                                    error_cb=error, **connect_options(network))
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise_if_cancelled()
            log.warning("network: cannot connect to %s (%s); retrying in %.1f s", network.url,
                        type(exc).__name__ + (f": {exc}" if str(exc) else ""), delay)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
            continue
        if on_state:
            on_state(True)
        return nc


async def ensure_streams(js, network: NetworkConfig, spacecraft: list[str]) -> None:
    """The stream of each spacecraft, created or updated to the configured replicas and windows;
    retried every second while the cluster cannot (no JetStream leader yet, too few nodes for the replicas)."""
    while True:
        try:
            await _ensure_streams(js, network, spacecraft)
            return
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("network: cannot set up the streams (%s); retrying", exc)
            await asyncio.sleep(1.0)


async def _ensure_streams(js, network: NetworkConfig, spacecraft: list[str]) -> None:
    for name in spacecraft:
        config = StreamConfig(name=stream_name(network.subject_prefix, name),
                              subjects=[subject(network.subject_prefix, name, "*")],
                              num_replicas=network.replicas, duplicate_window=network.duplicate_window_s,
                              max_age=network.stream_max_age_s)
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)  # exists with other settings
