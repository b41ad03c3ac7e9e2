"""Housekeeping app skeleton (PUS service 3, small).

The app keeps, per housekeeping packet, a collection period and an enable flag
(telecommands change them: PUS 3,5/3,6 enable/disable, 3,31 modify interval,
3,27 one-shot).  On each scheduler wake-up it asks a *provider* for the current
engineering values of every packet that is due and hands ``(packet name, values,
onboard time)`` to a *sink*.  Building the bytes from the mission database is the
sink's business; this app only decides *when* and *what*.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flightsw.core.app import App
from flightsw.core.bus import Message
from flightsw.core.msgids import (
    EVENT_HK_GENERATION_CHANGED,
    EVENT_HK_PERIOD_CHANGED,
    EVENT_HK_PROVIDER_FAILED,
    MID_HK_WAKEUP,
)
from flightsw.core.time import OnboardTime

log = logging.getLogger(__name__)

Provider = Callable[[str], Mapping[str, Any]]
Sink = Callable[[str, Mapping[str, Any], OnboardTime], object]



@dataclass
class HkPacket:
    """Collection settings of one housekeeping packet."""

    name: str
    period_s: float
    enabled: bool = True
    next_due: float = 0.0
    generated: int = 0

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"housekeeping packet {self.name!r}: period must be > 0 s, got {self.period_s}")


class HousekeepingApp(App):
    """Samples packets at their periods through ``provider`` and passes them to ``sink``."""

    subscriptions = (MID_HK_WAKEUP,)

    def __init__(self, packets: Iterable[HkPacket | tuple[str, float] | tuple[str, float, bool]],
                 provider: Provider, sink: Sink, *, name: str = "HK", wakeup_mid: int = MID_HK_WAKEUP) -> None:
        super().__init__(name)
        self.packets: dict[str, HkPacket] = {}
        for p in packets:
            pkt = p if isinstance(p, HkPacket) else HkPacket(*p)
            if pkt.name in self.packets:
                raise ValueError(f"housekeeping packet {pkt.name!r} listed twice")
            self.packets[pkt.name] = pkt
        self.provider = provider
        self.sink = sink
        self.wakeup_mid = wakeup_mid
        self.subscriptions = (wakeup_mid,)
        self.provider_errors = 0

    def _packet(self, name: str) -> HkPacket:
        try:
            return self.packets[name]
        except KeyError:
            raise KeyError(f"unknown housekeeping packet {name!r}; known: {', '.join(self.packets)}") from None

    # -- commands
    def set_period(self, name: str, period_s: float) -> None:
        if not period_s > 0:
            raise ValueError(f"housekeeping period must be > 0 s, got {period_s}")
        pkt = self._packet(name)
        pkt.period_s = float(period_s)
        # Re-phase from now so a shorter period takes effect at once.
        pkt.next_due = min(pkt.next_due, self.now() + pkt.period_s)
        self.event(EVENT_HK_PERIOD_CHANGED, 1, f"HK {name} period set to {period_s:g} s", packet=name, period_s=period_s)

    def set_enabled(self, name: str, enabled: bool) -> None:
        pkt = self._packet(name)
        if enabled and not pkt.enabled:
            pkt.next_due = self.now()
        pkt.enabled = enabled
        self.event(EVENT_HK_GENERATION_CHANGED, 1, f"HK {name} {'enabled' if enabled else 'disabled'}", packet=name,
                   enabled=enabled)

    def one_shot(self, name: str) -> bool:
        """Generate one packet now regardless of period and enable flag (PUS 3,27)."""
        return self._generate(self._packet(name))

    # -- app hooks
    def handle_message(self, message: Message) -> None:
        if message.msg_id != self.wakeup_mid:
            return
        now = self.now()
        for pkt in self.packets.values():
            if pkt.enabled and now + 1e-9 >= pkt.next_due:
                self._generate(pkt)
                # Keep the phase (no creeping), but never schedule into the past.
                pkt.next_due += pkt.period_s
                if pkt.next_due <= now:
                    pkt.next_due = now + pkt.period_s

    def _generate(self, pkt: HkPacket) -> bool:
        try:
            values = self.provider(pkt.name)
        except Exception as exc:  # a broken model must not silence the other packets
            self.provider_errors += 1
            log.exception("housekeeping provider failed for %s", pkt.name)
            self.event(EVENT_HK_PROVIDER_FAILED, 3, f"HK {pkt.name}: provider failed: {type(exc).__name__}: {exc}",
                       packet=pkt.name)
            return False
        self.sink(pkt.name, values, self.onboard_time())
        pkt.generated += 1
        return True

    def housekeeping(self) -> dict[str, Any]:
        hk = super().housekeeping()
        hk["provider_errors"] = self.provider_errors
        hk.update({f"generated_{name}": p.generated for name, p in self.packets.items()})
        return hk
