"""SimClock and OnboardClock: virtual/real time, scale, drift, correlation, CUC counts."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from flightsw.core.time import CucFormat, OnboardClock, SimClock, epoch_seconds_us, tai_minus_utc
from protocols.ccsds.cuc import CCSDS_EPOCH, CucTime

START = datetime(2021, 5, 22, 2, 40, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_virtual_clock_moves_only_when_stepped():
    clock = SimClock.virtual_at(START)
    assert clock.now() == 0.0
    assert clock.now() == 0.0
    clock.advance(1.5)
    clock.advance_to(1.0)  # never backwards
    assert clock.now() == 1.5
    assert clock.utc() == START + timedelta(seconds=1.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_real_clock_scaled_and_monotonic():
    wall = FakeMonotonic()
    clock = SimClock(START, time_scale=10.0, monotonic=wall)
    wall.t += 2.0
    assert clock.now() == pytest.approx(20.0)
    clock.time_scale = 1.0  # re-anchored: no jump
    assert clock.now() == pytest.approx(20.0)
    wall.t += 1.0
    assert clock.now() == pytest.approx(21.0)
    wall.t -= 5.0  # a misbehaving source cannot make sim time go back
    assert clock.now() == pytest.approx(21.0)
    with pytest.raises(RuntimeError):
        clock.advance(1)


def test_naive_start_rejected():
    with pytest.raises(ValueError, match="timezone"):
        SimClock(datetime(2021, 1, 1))


def test_sleep_until_virtual_jumps():
    clock = SimClock.virtual_at(START)
    asyncio.run(clock.sleep_until(42.0))
    assert clock.now() == 42.0


def test_sleep_until_real_scaled():
    clock = SimClock(START, time_scale=1000.0)

    async def main():
        await clock.sleep_until(20.0)  # 20 ms of wall time

    asyncio.run(main())
    assert clock.now() >= 20.0


def test_tai_minus_utc_explicit():
    assert tai_minus_utc(datetime(2021, 1, 1, tzinfo=UTC)) == 37
    assert tai_minus_utc(datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)) == 36
    assert tai_minus_utc(datetime(1999, 1, 1, tzinfo=UTC)) == 32


def test_onboard_counts_from_ccsds_epoch_include_leap_seconds():
    clock = SimClock.virtual_at(START)
    onboard = OnboardClock(clock)
    utc_days = (START - datetime(1958, 1, 1, tzinfo=UTC)).total_seconds()
    assert onboard.now().coarse == int(utc_days) + 37
    assert onboard.now().fine == 0
    clock.advance(0.25)
    assert onboard.now().fine == 1 << 14  # 0.25 * 2^16
    # The ground's codec reads the same instant back.
    assert onboard.cuc_time().to_datetime() == clock.utc()


def test_fine_widths_and_coarse_wrap():
    clock = SimClock.virtual_at(START)
    clock.advance(0.5)
    one_octet = OnboardClock(clock, cuc=CucFormat(coarse_octets=1, fine_octets=1))
    full = OnboardClock(clock).now()
    assert one_octet.now().fine == 128
    assert one_octet.now().coarse == full.coarse % 256


def test_drift_ppm_accumulates():
    clock = SimClock.virtual_at(START)
    onboard = OnboardClock(clock, drift_ppm=50.0)
    clock.advance(86_400.0)
    assert onboard.error() == pytest.approx(4.32, abs=1e-6)  # 50 ppm of a day
    assert onboard.to_utc(onboard.seconds()) == clock.utc()


def test_correlation_sets_offset_and_restarts_drift():
    clock = SimClock.virtual_at(START)
    onboard = OnboardClock(clock, drift_ppm=-20.0)
    clock.advance(10_000.0)
    assert onboard.error() == pytest.approx(-0.2, abs=1e-9)
    onboard.correlate()  # to true time
    assert onboard.error() == pytest.approx(0.0, abs=1e-9)
    clock.advance(1_000.0)
    assert onboard.error() == pytest.approx(-0.02, abs=1e-9)
    onboard.set_offset(1.0)
    assert onboard.error() == pytest.approx(0.98, abs=1e-9)
    assert onboard.correlations == 1


def test_mission_epoch_utc_scale_matches_ground_codec():
    clock = SimClock.virtual_at(START)
    launch = datetime(2020, 7, 23, 4, 41, 15, tzinfo=UTC)
    onboard = OnboardClock.mission_epoch(clock, launch, name="tianwen1")
    assert onboard.now().coarse == int((START - launch).total_seconds())
    clock.advance(3.75)
    assert onboard.cuc_time().to_datetime() == clock.utc()
    tai = OnboardClock.mission_epoch(clock, launch, scale="TAI")
    assert tai.now().coarse == onboard.now().coarse  # no leap second between 2020 and 2021


def test_start_before_epoch_rejected():
    clock = SimClock.virtual_at(datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="before"):
        OnboardClock.mission_epoch(clock, datetime(2021, 1, 1, tzinfo=UTC))


def test_epoch_seconds_exact_integer():
    us = epoch_seconds_us(START, CCSDS_EPOCH)
    assert isinstance(us, int)
    assert CucTime.from_datetime(START).coarse == us // 1_000_000


def test_correlate_by_delta_and_absolute():
    clock = SimClock.virtual_at(START)
    onboard = OnboardClock(clock)
    before = onboard.now()
    onboard.correlate(delta_s=-2.5)
    assert onboard.error() == pytest.approx(-2.5, abs=1e-9)
    onboard.correlate(before.seconds + 10)
    assert onboard.now().coarse == before.coarse + 10
