"""The label domains of the metric contract, from the configuration and the mission database.

A counter series that does not exist yet is "No data" on a dashboard and gives
``rate()`` and ``increase()`` nothing to work on, so an alert on the first
rejected frame never fires.  The daemon therefore creates every labelled
counter at 0 for every label value it can ever carry before the first frame
arrives.  The values come only from here: links and commanded spacecraft from
the configuration; spacecraft, virtual channels, APIDs, limit-checked
parameters and commands from the mission database; reasons, stages and results
from the fixed enumerations below.  A VCID or APID a frame carries that the
mission database does not declare is counted under :data:`UNDECLARED`, so wire
data can never create a label value.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from groundstation.archive import WRITE_ERROR_REASONS
from groundstation.chain.labels import UNDECLARED as UNDECLARED  # re-exported: the one label value for undeclared numbers
from groundstation.chain.labels import apid_labels, vc_labels
from groundstation.events import event_labels
from groundstation.history import FINAL_STATES
from groundstation.metrics import Metrics
from groundstation.network.merge import REJECT_REASONS as MERGE_REJECT_REASONS
from groundstation.network.station import UNSENT_REASONS
from groundstation.network.uplink import UPLINK_UNSENT_REASONS
from protocols.missions import Spacecraft
from protocols.parameters import LimitState


class FrameRejectReason(StrEnum):
    """``queqiao_frames_rejected_total{reason}``."""

    TRUNCATED = "truncated"  # shorter than a primary header
    VERSION = "version"  # transfer frame version neither TM nor AOS
    UNKNOWN_SPACECRAFT = "unknown_spacecraft"  # no enabled spacecraft has this version and SCID
    LENGTH = "length"  # not the spacecraft's frame length
    FECF = "fecf"  # frame error control mismatch
    INTERNAL_ERROR = "internal_error"  # a bug in the chain (logged with its trace)


class PacketRejectReason(StrEnum):
    """``queqiao_packets_rejected_total{reason}``: the chain's own and the demultiplexer's anomalies."""

    TRUNCATED = "truncated"
    LENGTH = "length"
    UNKNOWN_APID = "unknown_apid"
    UNKNOWN_PACKET = "unknown_packet"
    PEC = "pec"
    FRAME_LENGTH = "frame_length"
    FECF = "fecf"
    VERSION = "version"
    FHEC = "fhec"
    NOT_PACKETS = "not_packets"
    BAD_FHP = "bad_fhp"
    FHP_MISMATCH = "fhp_mismatch"
    BAD_PACKET_HEADER = "bad_packet_header"
    INCOMPLETE_AT_END = "incomplete_at_end"
    OUT_OF_SEQUENCE = "out_of_sequence"  # far behind the last count, until enough packets agree on a reset


#: ``queqiao_chain_stage_total{stage, outcome}``: every (stage, outcome) pair the chain counts.
SYNC_EVENTS = ("lock", "lost", "slip")
CHAIN_STAGES: tuple[tuple[str, str], ...] = (
    *(("route", outcome) for outcome in ("ok", "truncated", "version", "unknown_spacecraft")),
    ("length", "rejected"), ("fecf", "rejected"), ("fecf", "ok"),
    ("packets", "ok"), *(("packets", r.value) for r in PacketRejectReason),
    ("sequence", "gap"), ("sequence", "duplicate"), ("sequence", "out_of_sequence"), ("sequence", "reset"),
    ("vc_count", "resync"),
    ("decode", "ok"), *(("decode", r.value) for r in PacketRejectReason),
    *(("sync", event) for event in SYNC_EVENTS),
)

ALARM_STATES = tuple(state.name.lower() for state in LimitState)


def limited_parameters(spacecraft: Spacecraft, overridden: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(subsystem, parameter) of every telemetry parameter that is limit-checked (by definition or config)."""
    overridden = set(overridden)
    found: dict[tuple[str, str], None] = {}
    for definition in spacecraft.packets:
        if definition.packet_type != 0:  # telemetry only
            continue
        for path, parameter in definition.parameters():
            name = path.rsplit(".", 1)[-1]
            if parameter.limits is not None or name in overridden:
                found[(definition.subsystem, name)] = None
    return list(found)


@dataclass
class LabelDomains:
    """What the daemon can ever label a counter with."""

    links: list[str]
    spacecraft: list[Spacecraft]
    commanded: list[str] = field(default_factory=list)
    limit_overrides: Mapping[str, Iterable[str]] = field(default_factory=dict)
    remote_write: list[str] = field(default_factory=list)  # the [[remote_write]] endpoints' names
    merge_sites: list[str] = field(default_factory=list)  # the stations a [merge] takes frames from
    network_commanded: list[str] = field(default_factory=list)  # spacecraft a merge commands through the sites
    relay_site: str | None = None  # this site's name, when it relays the merge's telecommands
    relayed: list[str] = field(default_factory=list)  # the spacecraft it relays them for

    def series(self) -> dict[str, list[tuple[str, ...]]]:
        """Every counter of the contract with every label tuple it may carry."""
        out: dict[str, list[tuple[str, ...]]] = {}
        out["queqiao_frames_received_total"] = [(link,) for link in self.links]
        out["queqiao_link_bytes_received_total"] = [(link,) for link in self.links]
        out["queqiao_link_skipped_octets_total"] = [(link,) for link in self.links]
        out["queqiao_link_cadu_datagrams_total"] = [(link,) for link in self.links]
        out["queqiao_frames_rejected_total"] = [(link, r.value) for link in self.links for r in FrameRejectReason]
        out["queqiao_chain_stage_total"] = list(CHAIN_STAGES)
        for name in ("queqiao_frames_total", "queqiao_frame_gaps_total", "queqiao_frame_count_resyncs_total"):
            out[name] = [(sc.name, vc) for sc in self.spacecraft for vc in vc_labels(sc)]
        for name in ("queqiao_packets_total", "queqiao_packet_gaps_total", "queqiao_packet_duplicates_total",
                     "queqiao_packet_sequence_resets_total"):
            out[name] = [(sc.name, apid) for sc in self.spacecraft for apid in apid_labels(sc)]
        out["queqiao_packets_rejected_total"] = [(sc.name, r.value) for sc in self.spacecraft
                                                 for r in PacketRejectReason]
        out["queqiao_alarms_total"] = [
            (sc.name, subsystem, parameter, state) for sc in self.spacecraft
            for subsystem, parameter in limited_parameters(sc, self.limit_overrides.get(sc.name, ()))
            for state in ALARM_STATES]
        by_name = {sc.name: sc for sc in self.spacecraft}
        out["queqiao_commands_total"] = [
            (name, command.name, result) for name in self.commanded if name in by_name
            for command in by_name[name].commands for result in FINAL_STATES]
        out["queqiao_events_total"] = [labels for sc in self.spacecraft for labels in event_labels(sc)]
        out["queqiao_archive_records_total"] = [()]
        out["queqiao_archive_write_errors_total"] = [(reason,) for reason in WRITE_ERROR_REASONS]
        for name in ("queqiao_remote_write_samples_sent_total", "queqiao_remote_write_samples_retried_total",
                     "queqiao_remote_write_samples_dropped_total"):
            out[name] = [(endpoint,) for endpoint in self.remote_write]
        coded = [sc.name for sc in self.spacecraft if sc.profile.frame.rs is not None]
        out["queqiao_rs_codewords_total"] = [(name, result) for name in coded
                                             for result in ("clean", "corrected", "uncorrectable")]
        out["queqiao_rs_corrected_symbols_total"] = [(name,) for name in coded]
        out["queqiao_network_unsent_frames_total"] = [(reason,) for reason in UNSENT_REASONS]
        pairs = [(site, sc.name) for site in self.merge_sites for sc in self.spacecraft]
        for name in ("queqiao_merge_frames_offered_total", "queqiao_merge_frames_chosen_total",
                     "queqiao_merge_duplicates_dropped_total", "queqiao_merge_gaps_filled_total",
                     "queqiao_merge_late_frames_total", "queqiao_merge_clock_skew_total"):
            out[name] = list(pairs)
        out["queqiao_merge_rejected_total"] = [pair + (reason,) for pair in pairs for reason in MERGE_REJECT_REASONS]
        out["queqiao_network_uplink_frames_total"] = [(site, sc) for site in self.merge_sites
                                                      for sc in self.network_commanded]
        out["queqiao_network_uplink_unsent_total"] = [(sc, reason) for sc in self.network_commanded
                                                      for reason in UPLINK_UNSENT_REASONS]
        sites = [self.relay_site] if self.relay_site is not None else []
        out["queqiao_network_uplink_relayed_total"] = [(site, sc) for site in sites for sc in self.relayed]
        out["queqiao_network_uplink_refused_total"] = [(site, "unknown_spacecraft") for site in sites]
        return out

    def declare(self, metrics: Metrics) -> int:
        """Create every series at 0 (existing values are kept); returns how many series there are."""
        total = 0
        for name, labels in self.series().items():
            for label in labels:
                metrics.inc(name, label, 0)
            total += len(labels)
        return total
