"""Every packet of every mission: engineering values -> bytes -> the same values (within a raw step)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import ProtocolError
from protocols.missions import Command, EventReport, HousekeepingPacket, ServiceReport, builtin_registry

from .support import lookup, nested, same, values_strategy

REGISTRY = builtin_registry()
PACKETS = [pytest.param(sc, p, id=f"{sc.name}-{p.name}") for sc in REGISTRY for p in sc.packets]


def build(packet, values: dict, sequence_count: int) -> bytes:
    tree = nested(values)
    if isinstance(packet, HousekeepingPacket):
        return packet.build(tree.get("hk", {}), sequence_count=sequence_count, time=(sequence_count * 7, 0))
    if isinstance(packet, EventReport):
        return packet.build(tree.get("aux", {}), sequence_count=sequence_count)
    if isinstance(packet, ServiceReport):
        # The request ID names a telecommand: take one with the report's APID.
        request = bytes([0x18 | packet.apid >> 8, packet.apid & 0xFF, 0xC0 | sequence_count >> 8,
                         sequence_count & 0xFF]) if packet.service == 1 else None
        return packet.build(tree.get("report", {}), request=request, sequence_count=sequence_count)
    assert isinstance(packet, Command)
    return packet.build(sequence_count=sequence_count, **tree.get("args", {}))


@pytest.mark.parametrize("spacecraft,packet", PACKETS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(spacecraft, packet, data):
    values = data.draw(values_strategy(packet), label="values")
    count = data.draw(st.integers(0, 0x3FFF), label="sequence_count")
    raw = build(packet, values, count)
    assert len(raw) == packet.size
    assert REGISTRY.resolve(spacecraft.scid, raw) is packet
    parsed = packet.parse(raw)
    assert parsed.primary.apid == packet.apid and parsed.primary.sequence_count == count
    assert (parsed.secondary.service, parsed.secondary.subtype) == (packet.service, packet.subtype)
    params = dict(packet.parameters())
    for path, sent in values.items():
        got = lookup(parsed, path)
        assert same(params[path], sent, got), f"{path}: sent {sent!r}, got {got!r}"
    if isinstance(packet, ServiceReport) and "request" in parsed.report:
        assert (parsed.report.request.apid, parsed.report.request.sequence_count) == (packet.apid, count)
    # Building again from what was parsed gives the same bytes (raw values are stable).
    assert build(packet, {p: lookup(parsed, p) for p in values}, count) == raw


@pytest.mark.parametrize("spacecraft,packet", PACKETS)
def test_packets_are_fixed_size_with_pec(spacecraft, packet):
    assert packet.construct.sizeof() == packet.size
    assert packet.construct.subcons[-1].name == "pec"


ARGUMENTS = [pytest.param(sc, c, name, a, id=f"{sc.name}-{c.name}-{name}") for sc in REGISTRY for c in sc.commands
             for name, a in c.arguments.items() if isinstance(a.valid, tuple)]


@pytest.mark.parametrize("spacecraft,command,name,argument", ARGUMENTS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_out_of_range_arguments_are_refused(spacecraft, command, name, argument, data):
    """Any value outside an argument's valid range is refused, naming the command and the argument."""
    lo, hi = argument.valid
    step = max(argument.calibration.resolution(), 1e-6)
    bad = data.draw(st.one_of(st.floats(hi + step, hi + 1e6 * step), st.floats(lo - 1e6 * step, lo - step)))
    good = data.draw(values_strategy(command))
    arguments = {k.split(".", 1)[1]: v for k, v in good.items()} | {name: bad}
    with pytest.raises(ProtocolError, match=rf"telecommand {command.name} field 'args.{name}'.*outside the valid"):
        command.build(**arguments)
