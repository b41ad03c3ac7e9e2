"""CUC time code: P-field, T-field, epochs, leap seconds, column helpers."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.ccsds.cuc import (
    CCSDS_EPOCH,
    GPS_EPOCH,
    UNIX_EPOCH,
    CucTime,
    CucWithPField,
    Epoch,
    PField,
    cuc_seconds,
    cuc_to_unix,
    tai_minus_utc,
    tai_to_utc,
    utc_to_tai,
)
from protocols.errors import ProtocolError, TruncatedError

pfields = st.builds(PField, coarse_octets=st.integers(1, 7), fine_octets=st.integers(0, 10),
                    time_code_id=st.sampled_from([1, 2]))


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(pfields)
def test_pfield_round_trip(p):
    raw = p.encode()
    assert len(raw) == p.length == (2 if p.coarse_octets > 4 or p.fine_octets > 3 else 1)
    assert PField.decode(raw) == p


def test_pfield_extension_layout():
    # 5 coarse + 4 fine: first octet as for 4+3 with the extension flag, then 1 extra coarse, 1 extra fine.
    assert PField(5, 4).encode() == bytes([0x80 | 0x1F, (1 << 5) | (1 << 2)])


def test_pfield_rejects_other_time_codes():
    with pytest.raises(ProtocolError) as info:
        PField.decode(b"\x40")  # CDS
    assert info.value.field == "time_code_id"
    with pytest.raises(TruncatedError):
        PField.decode(b"\x9e")


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.data())
def test_t_field_round_trip(data):
    p = data.draw(pfields)
    coarse = data.draw(st.integers(0, (1 << (8 * p.coarse_octets)) - 1))
    fine = data.draw(st.integers(0, (1 << (8 * p.fine_octets)) - 1))
    epoch = CCSDS_EPOCH if p.time_code_id == 1 else GPS_EPOCH
    t = CucTime(coarse, fine, p.coarse_octets, p.fine_octets, epoch)
    assert CucTime.unpack(t.pack(), epoch=epoch) == t
    assert CucTime.unpack(t.pack(with_pfield=False), pfield=p, epoch=epoch) == t
    c = CucWithPField.parse(t.pack())
    assert (c.coarse, c.fine, c.pfield) == (coarse, fine, t.pfield)
    assert CucWithPField.build(c) == t.pack()


def test_agency_epoch_needs_the_epoch():
    raw = CucTime(5, 0, epoch=GPS_EPOCH).pack()
    assert raw[0] == 0x2E
    with pytest.raises(ProtocolError):
        CucTime.unpack(raw)


utc_times = st.datetimes(min_value=datetime(1972, 1, 2), max_value=datetime(2090, 1, 1))  # 4 coarse octets from 1958 end in 2094


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(utc_times, st.sampled_from([CCSDS_EPOCH, GPS_EPOCH, UNIX_EPOCH]))
def test_datetime_round_trip_to_the_microsecond(when, epoch):
    if when < epoch.start + timedelta(days=1):
        return
    t = CucTime.from_datetime(when, fine_octets=3, epoch=epoch)
    back = t.to_datetime()
    assert abs(back - when.replace(tzinfo=UTC)) <= timedelta(microseconds=1)


def test_tai_epoch_subtracts_tai_minus_utc():
    # 2017-01-01T00:00:00 UTC is 37 s of leap seconds ahead in TAI.
    t = CucTime.from_datetime(datetime(2017, 1, 1))
    naive_days = (datetime(2017, 1, 1) - datetime(1958, 1, 1)).days
    assert t.coarse == naive_days * 86400 + 37
    assert tai_minus_utc(datetime(2016, 12, 31, 23, 59, 59)) == 36
    # Across the leap second the TAI count advances by 2 over one UTC second.
    before = CucTime.from_datetime(datetime(2016, 12, 31, 23, 59, 59)).coarse
    assert t.coarse - before == 2
    # The leap second itself (TAI count between) reads as a repeated 23:59:59.
    assert CucTime(before + 1, 0).to_datetime() == datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_gps_epoch_and_unix_epoch():
    assert CucTime(0, 0, epoch=GPS_EPOCH).to_datetime() == datetime(1980, 1, 6, tzinfo=UTC)
    assert CucTime(0, 0, epoch=UNIX_EPOCH).to_datetime() == datetime(1970, 1, 1, tzinfo=UTC)
    assert utc_to_tai(datetime(1980, 1, 6)) == datetime(1980, 1, 6, 0, 0, 19)
    assert tai_to_utc(datetime(2000, 1, 1, 0, 0, 32)) == datetime(2000, 1, 1)


def test_before_1972_is_refused():
    with pytest.raises(ValueError):
        CucTime(0, 0).to_datetime()


def test_mission_epoch_utc_scale():
    mission = Epoch("mission", datetime(2020, 7, 23, 4, 41, 15), "UTC")
    t = CucTime.from_datetime(datetime(2021, 5, 15), epoch=mission)
    assert t.pfield.time_code_id == 2
    assert t.to_datetime() == datetime(2021, 5, 15, tzinfo=UTC)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failures
@given(st.lists(st.tuples(st.integers(0x5000_0000, 0xFFFF_FFFF), st.integers(0, 0xFFFF)), min_size=1, max_size=20))
def test_columns_agree_with_scalar_conversion(values):
    coarse = np.array([c for c, _ in values], dtype=np.uint32)
    fine = np.array([f for _, f in values], dtype=np.uint16)
    secs = cuc_seconds(coarse, fine, 2)
    assert np.allclose(secs, [c + f / 65536 for c, f in values])
    unix = cuc_to_unix(coarse, fine, 2)
    scalar = [CucTime(int(c), int(f)).to_datetime().timestamp() for c, f in values]
    assert np.allclose(unix, scalar, atol=2e-6, rtol=0)
