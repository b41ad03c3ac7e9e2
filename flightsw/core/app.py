"""Apps, the executive that hosts them, and the per-spacecraft app registry.

An :class:`App` is the unit of flight software (a cFS application, small): it
subscribes its pipe to message ids, is woken by scheduler messages, handles
commands and data, reports events, and exposes its own housekeeping counters.
Apps never call each other; they talk over the :class:`~flightsw.core.bus.SoftwareBus`.

The :class:`Executive` (cFS ES, small) owns the clocks, the bus and the apps: it
starts each app (pipe, subscriptions, ``init()``), drains the pipes after each
scheduler tick, contains app failures (a handler that raises is counted and
reported, the others keep running) and routes event reports to the event app.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from flightsw.core.bus import Message, Pipe, SoftwareBus
from flightsw.core.msgids import EVENT_APP_ERROR
from flightsw.core.time import OnboardClock, OnboardTime, SimClock

if TYPE_CHECKING:
    from flightsw.core.events import EventApp

log = logging.getLogger(__name__)

AppT = TypeVar("AppT", bound="App")


class App:
    """Base class of flight-software apps.

    Subclasses set ``subscriptions`` (message ids) and override the hooks:
    :meth:`init` (once, after the pipe exists), :meth:`handle_message` (per message),
    :meth:`housekeeping` (the app's own counters, polled for its HK packet).
    """

    #: Message ids this app's pipe subscribes to at start.
    subscriptions: tuple[int, ...] = ()
    #: Pipe depth; messages beyond it are dropped and counted.
    pipe_depth: int = 16

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.pipe: Pipe | None = None
        self._executive: Executive | None = None
        self.handled = 0
        self.errors = 0

    # -- wiring (done by the executive)
    @property
    def executive(self) -> Executive:
        if self._executive is None:
            raise RuntimeError(f"app {self.name!r} is not started; add it to an Executive first")
        return self._executive

    @property
    def bus(self) -> SoftwareBus:
        return self.executive.bus

    @property
    def clock(self) -> SimClock:
        return self.executive.clock

    @property
    def onboard(self) -> OnboardClock:
        return self.executive.onboard

    def now(self) -> float:
        return self.executive.clock.now()

    def onboard_time(self) -> OnboardTime:
        return self.executive.onboard.now()

    # -- hooks
    def init(self) -> None:
        """Called once when the app starts (pipe and subscriptions exist)."""

    def handle_message(self, message: Message) -> None:
        """Called for each message taken from the app's pipe."""

    def housekeeping(self) -> dict[str, Any]:
        """The app's own counters/values for its housekeeping packet."""
        pipe = self.pipe
        return {
            "handled": self.handled,
            "errors": self.errors,
            "pipe_dropped": pipe.dropped if pipe is not None else 0,
        }

    # -- services for subclasses
    def publish(self, msg_id: int, payload: Any = None) -> int:
        return self.bus.publish(Message(msg_id, payload, self.name, self.now()))

    def subscribe(self, msg_id: int) -> None:
        assert self.pipe is not None
        self.bus.subscribe(self.pipe, msg_id)

    def event(self, event_id: int, severity: int, text: str, **data: Any) -> bool:
        """Report an event (PUS 5); returns False when rate-limited or disabled."""
        return self.executive.report_event(self.name, event_id, severity, text, data)


class Executive:
    """Hosts the apps of one spacecraft: start, dispatch, failure containment, events."""

    def __init__(self, clock: SimClock, onboard: OnboardClock | None = None, bus: SoftwareBus | None = None, *,
                 spacecraft: str = "spacecraft", max_dispatch_rounds: int = 8) -> None:
        self.clock = clock
        self.onboard = onboard if onboard is not None else OnboardClock(clock)
        self.bus = bus if bus is not None else SoftwareBus()
        self.spacecraft = spacecraft
        self.max_dispatch_rounds = max_dispatch_rounds
        self.apps: dict[str, App] = {}
        self.events: EventApp | None = None
        self.dispatch_truncated = 0

    def add(self, app: AppT) -> AppT:
        """Start an app: create its pipe, subscribe it, call ``init()``."""
        from flightsw.core.events import EventApp  # local: events imports this module

        if app.name in self.apps:
            raise ValueError(f"an app named {app.name!r} is already running")
        app._executive = self
        app.pipe = self.bus.create_pipe(app.name, app.pipe_depth)
        for msg_id in app.subscriptions:
            self.bus.subscribe(app.pipe, msg_id)
        self.apps[app.name] = app
        if isinstance(app, EventApp) and self.events is None:
            self.events = app
        app.init()
        log.debug("app %s started (subscriptions %s)", app.name, [hex(m) for m in app.subscriptions])
        return app

    def add_all(self, apps: Iterable[App]) -> None:
        for app in apps:
            self.add(app)

    def app(self, name: str) -> App:
        try:
            return self.apps[name]
        except KeyError:
            raise KeyError(f"no app named {name!r}; running: {', '.join(self.apps) or 'none'}") from None

    def dispatch(self) -> int:
        """Drain every pipe; messages published meanwhile are handled in further rounds.

        Rounds are capped so that two apps that answer each other forever cannot
        hang a tick; what is left waits for the next tick (counted).
        """
        handled = 0
        for _ in range(self.max_dispatch_rounds):
            busy = False
            for app in list(self.apps.values()):
                pipe = app.pipe
                if pipe is None or not pipe.queue:
                    continue
                busy = True
                # Only what is queued now: a self-publishing app cannot starve the others.
                for _ in range(len(pipe.queue)):
                    message = pipe.queue.popleft()
                    self._deliver(app, message)
                    handled += 1
            if not busy:
                return handled
        if any(app.pipe and app.pipe.queue for app in self.apps.values()):
            self.dispatch_truncated += 1
        return handled

    def _deliver(self, app: App, message: Message) -> None:
        try:
            app.handle_message(message)
            app.handled += 1
        except Exception as exc:  # containment: one faulty app must not stop the others
            app.errors += 1
            log.exception("app %s failed on message 0x%04X", app.name, message.msg_id)
            self.report_event(app.name, EVENT_APP_ERROR, 3,
                              f"{app.name} failed handling 0x{message.msg_id:04X}: {type(exc).__name__}: {exc}",
                              {"msg_id": message.msg_id})

    def report_event(self, app: str, event_id: int, severity: int, text: str,
                     data: Mapping[str, Any] | None = None) -> bool:
        if self.events is not None:
            return self.events.report(app, event_id, severity, text, **dict(data or {}))
        log.info("event %s/%d sev %d: %s", app, event_id, severity, text)
        return True

    def reporter(self, app: str) -> Callable[[int, int, str, Mapping[str, Any]], bool]:
        """A bound event callback for components that are not apps (storage, faults)."""
        def report(event_id: int, severity: int, text: str, data: Mapping[str, Any] | None = None) -> bool:
            return self.report_event(app, event_id, severity, text, data)
        return report

    def housekeeping(self) -> dict[str, dict[str, Any]]:
        return {name: app.housekeeping() for name, app in self.apps.items()}


AppFactory = Callable[[], App]


class AppRegistry:
    """Which apps each spacecraft runs, in start order: ``registry.register("zhurong", PowerApp)``."""

    def __init__(self) -> None:
        self._factories: dict[str, list[AppFactory]] = {}

    def register(self, spacecraft: str, factory: AppFactory | None = None):
        """Register a factory (a class or callable returning an App); usable as a decorator."""
        def add(f: AppFactory) -> AppFactory:
            self._factories.setdefault(spacecraft, []).append(f)
            return f
        return add(factory) if factory is not None else add

    def spacecraft(self) -> list[str]:
        return sorted(self._factories)

    def create(self, spacecraft: str) -> list[App]:
        """Fresh app instances for one spacecraft."""
        if spacecraft not in self._factories:
            raise KeyError(f"no apps registered for spacecraft {spacecraft!r}; known: {', '.join(self.spacecraft()) or 'none'}")
        return [factory() for factory in self._factories[spacecraft]]


#: The registry mission models register their apps in.
APPS = AppRegistry()
