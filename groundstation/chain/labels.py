"""Label domains of the chain's per-spacecraft metrics: every value comes from the mission database.

A VCID or APID on the wire that the spacecraft does not declare is counted under the one value
:data:`UNDECLARED`, so a corrupted or foreign frame cannot create new series.  One function per
domain (what ``groundstation.metrics`` needs to create every series with 0 at start-up):

- ``vc``   (queqiao_frames_total, queqiao_frame_gaps_total, queqiao_frame_count_resyncs_total): :func:`vc_labels`
- ``apid`` (queqiao_packets_total, queqiao_packet_gaps_total, queqiao_packet_duplicates_total,
  queqiao_packet_sequence_resets_total): :func:`apid_labels`
"""
from __future__ import annotations

from protocols.missions import Spacecraft

UNDECLARED = "undeclared"


def declared_vcids(spacecraft: Spacecraft) -> tuple[int, ...]:
    """The virtual channels the spacecraft's profile declares (the idle VC included)."""
    return tuple(sorted(vc.vcid for vc in spacecraft.profile.virtual_channels))


def declared_apids(spacecraft: Spacecraft) -> tuple[int, ...]:
    """The application processes the spacecraft declares."""
    return tuple(sorted(a.number for a in spacecraft.apids))


def vc_labels(spacecraft: Spacecraft) -> tuple[str, ...]:
    """Every value of the ``vc`` label for this spacecraft."""
    return (*map(str, declared_vcids(spacecraft)), UNDECLARED)


def apid_labels(spacecraft: Spacecraft) -> tuple[str, ...]:
    """Every value of the ``apid`` label for this spacecraft."""
    return (*map(str, declared_apids(spacecraft)), UNDECLARED)


class LabelOf:
    """Wire number -> label value (the number when declared, else :data:`UNDECLARED`)."""

    def __init__(self, declared: tuple[int, ...]) -> None:
        self._labels = {n: str(n) for n in declared}

    def __call__(self, number: int) -> str:
        return self._labels.get(number, UNDECLARED)

    def __contains__(self, number: int) -> bool:
        return number in self._labels
