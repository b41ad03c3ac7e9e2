"""How Queqiao names things in XTCE: one place for the writer and the reader.

XTCE names may hold anything but ``. / : [ ]`` and spaces (NameType in the XSD), and every
parameter name is unique in its SpaceSystem.  A packet field's path (``hk.battery_voltage``,
``report.request.apid``) becomes ``<packet>__<path below the group>`` with ``__`` between the
levels, so the reader recovers packet, group and nesting from the name alone.
"""
from __future__ import annotations

NAMESPACE = "http://www.omg.org/spec/XTCE/20180204"
SEPARATOR = "__"

#: The group struct that holds a packet's own fields, by packet kind (see protocols.missions.model).
GROUPS = {"housekeeping": "hk", "event": "aux", "report": "report", "command": "args"}

#: The root container: the CCSDS primary header (abstract), as space_packet_parser expects it by default.
ROOT_CONTAINER = "CCSDSPacket"
TM_CONTAINER = "PUSTelemetryPacket"
#: Primary header fields: construct name -> XTCE parameter name.
PRIMARY = {
    "version": "ccsds_version", "type": "ccsds_type", "secondary_header_flag": "ccsds_secondary_header_flag",
    "apid": "ccsds_apid", "sequence_flags": "ccsds_sequence_flags", "sequence_count": "ccsds_sequence_count",
    "data_length": "ccsds_data_length",
}
PEC = "pus_packet_error_control"

#: AncillaryData names (Queqiao's own facts that XTCE has no element for).
ANC_SPACECRAFT = "queqiao.spacecraft"   # JSON: SCID, frame profile, APIDs, instruments
ANC_KIND = "queqiao.kind"               # housekeeping | event | report | command
ANC_SUBSYSTEM = "queqiao.subsystem"
ANC_PERIOD = "queqiao.period"           # housekeeping default period, s
ANC_VALID = "queqiao.valid"             # enumerated argument: the states a command may send


def parameter_name(packet: str, path: str) -> str:
    """The XTCE parameter name of field ``path`` of packet ``packet`` (``power``, ``hk.bus_voltage``)."""
    parts = path.split(".")
    return SEPARATOR.join([packet, *parts[1:]]) if len(parts) > 1 else SEPARATOR.join([packet, path])


def secondary_name(parts: tuple[str, ...]) -> str:
    """``secondary.time.coarse`` -> ``pus_tm_time_coarse``."""
    return "pus_tm_" + "_".join(parts[1:])


def key_name(packet_type: int, apid: int, service: int, subtype: int, key: str) -> str:
    """The discriminator (SID, event ID, function ID) of one APID and PUS service/subtype."""
    return f"{'tc' if packet_type else 'tm'}_apid{apid}_pus{service}_{subtype}{SEPARATOR}{key}"
