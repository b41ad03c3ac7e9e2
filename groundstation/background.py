"""Background work of the daemon (the parameter archive's writes, remote write's encoding) on a
thread of its own at a lower scheduling priority.

Why: on a busy core the kernel's scheduler shares the CPU between the event loop (which receives
frames, archives them and runs the chain) and the threads that turn samples into Parquet files or
remote-write requests.  A flood that needs more than the core then loses frames in the socket
buffer, although the frame archive is the source of truth and the samples could wait.  With the
background thread at a higher nice value the event loop runs first: frames are received and
archived while the background work takes the CPU that is left, and what it cannot keep up with
is dropped oldest first and counted by its owner (the parameter archive's
``max_pending_samples``, remote write's queue), to be rebuilt from the frame archive
(``groundstation replay --parameters``).  When the core has room, the background thread runs as
soon as it has work: the nice value only decides who waits when both want the core.

A nice value alone is not enough in one interpreter: each time the event loop lets go of the
interpreter lock (in every system call) a waiting background thread takes it, and the loop then
waits for it back, so the background thread gets about a tenth of a flooded core whatever its
priority (measured at 50,000 frames/s).  So the background work also steps aside: between its
pieces it calls :func:`yield_to_ingest`, which waits while a UDP link reports that its datagrams
wait too long in the socket (:mod:`links.pressure`).

Per-thread nice values are a Linux feature (``setpriority`` on the thread ID); elsewhere the
thread runs at the process's priority.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from links.pressure import PRESSURE

log = logging.getLogger("queqiao.background")

T = TypeVar("T")

#: How much lower than the daemon the background thread runs (nice 0..19; 19: about 1.5 % of the
#: CPU against a busy thread at nice 0 under Linux's CFS weights).
BACKGROUND_NICE = 19


#: How long background work sleeps at a time while the links are behind.
YIELD_S = 0.01

_thread = threading.local()


def yield_to_ingest() -> None:
    """Called by background work between its pieces: on a background thread, wait while a lossy link
    reports the station behind (links.pressure).  Elsewhere (a flush at shutdown, replay, tests) it
    returns at once."""
    if getattr(_thread, "background", False):
        while PRESSURE.behind():
            time.sleep(YIELD_S)


def _lower_priority(nice: int) -> None:
    _thread.background = True
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: the work still runs
        log.debug("background thread keeps the process priority: %s", exc)


class BackgroundWorker:
    """One low-priority thread that runs blocking calls for the event loop, one at a time.

    The daemon's writers share one (:func:`shared_worker`): every thread that waits for work
    competes for the interpreter lock each time the event loop lets go of it (in every system
    call), so one background thread costs the loop less than two, whatever their priority.
    """

    def __init__(self, name: str, nice: int = BACKGROUND_NICE) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_lower_priority,
                                            initargs=(nice,))

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the background thread, awaited."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        """Wait for the running call, then stop the thread."""
        with contextlib.suppress(RuntimeError):
            self._executor.shutdown(wait=True)


_shared: dict[int, BackgroundWorker] = {}
_shared_lock = threading.Lock()


def shared_worker() -> BackgroundWorker:
    """The process's background worker (created on first use; one per process, never closed: it
    lives as long as the daemon's writers, and its idle thread costs nothing)."""
    with _shared_lock:
        worker = _shared.get(os.getpid())  # per process: a forked child starts without the thread
        if worker is None:
            worker = _shared[os.getpid()] = BackgroundWorker("queqiao-background")
        return worker
