"""Whether the receiving links are falling behind, for work that can wait.

A UDP link loses what its kernel receive buffer cannot hold while the daemon is busy elsewhere.
Each time it wakes up it knows how long its oldest datagram waited in that buffer (the kernel's
arrival time stamp); a wait beyond :data:`BEHIND_S` means the event loop is not keeping up, and
the link marks the station "behind" for :data:`HOLD_S`.  Background work that can be done later
(the parameter archive's writes, remote write's encoding: :mod:`groundstation.background`) asks
:meth:`IngestPressure.behind` between its pieces and waits while it is, so the loop gets the
whole core.  Links that lose nothing by waiting (files, TCP) never report: a file replayed as
fast as possible is always "behind" and must not starve the archive.
"""
from __future__ import annotations

import time

#: A datagram that waited longer than this in the socket says the loop is behind (a batch is
#: normally read within a millisecond or two of its first datagram; the buffer holds tens of ms).
BEHIND_S = 0.010
#: How long one such observation keeps the station "behind".
HOLD_S = 0.1


class IngestPressure:
    """The station's "behind" flag: set by lossy links, read by background work (any thread)."""

    def __init__(self) -> None:
        self._until = 0.0
        #: How many wake-ups found the oldest datagram waiting longer than BEHIND_S.
        self.behind_count = 0

    def note_wait(self, waited: float) -> None:
        """A lossy link's oldest datagram of this wake-up waited ``waited`` seconds in the socket."""
        if waited > BEHIND_S:
            self._until = time.monotonic() + HOLD_S
            self.behind_count += 1

    def behind(self) -> bool:
        return time.monotonic() < self._until


#: The process's flag (the daemon runs one station).
PRESSURE = IngestPressure()
