"""The emulator's uplink security (CCSDS 355.0-B-2): a spacecraft whose profile requires SDLS refuses
unauthenticated, forged and replayed TC frames (BD and AD alike, before FARM-1), counts them by
reason, and says so in PUS 5 events and its obdh housekeeping, as an independent reader decodes them."""
from __future__ import annotations

import os

import pytest

from flightsw.runtime import Emulator, EmulatorError
from links.keyfiles import write_key_file
from protocols.ccsds.cop1 import UNLOCK
from protocols.ccsds.sdls import AES256_GCM, HMAC_SHA256, SecurityAssociation, apply_security
from protocols.ccsds.tcframe import TcFrame
from protocols.missions import registry
from tests.flightsw.test_fsw_rt_core import Ground, make

KEY = bytes(range(32))
SA = SecurityAssociation(1, HMAC_SHA256, KEY)
GCM = SecurityAssociation(2, AES256_GCM, bytes(reversed(range(32))))


def secured(rt, packet: bytes, sn: int, *, sa=SA, ns: int = 0, bypass: bool = True, control: bool = False) -> bytes:
    frame = TcFrame(rt.spacecraft.scid, 0, packet, frame_sequence_number=ns, bypass_flag=int(bypass),
                    control_command_flag=int(control))
    return apply_security(frame, sa, sn)


def event_aux(ground: Ground) -> list[dict]:
    ev = ground.sc.event("tc_frame_rejected_security")
    return [dict(ev.parse(tm.pack()).aux) for tm in ground.of(5) if int.from_bytes(tm.source_data[:2], "big")
            == ev.event_id]


def test_profiles_say_who_requires_sdls():
    assert {sc.name: sc.sdls_required for sc in registry()} == {
        "zhurong": False, "tianwen1": False, "change5-orbiter": False, "change5-lander": False, "haiyang2d": True,
        "ilrs-lander": True}


@pytest.mark.parametrize("mission", ["haiyang2d", "ilrs-lander"])
def test_bd_frames_unauthenticated_forged_replayed_are_refused_and_reported(mission):
    rt = make(mission, sdls_required=None, sdls_associations={1: SA, 2: GCM})
    ground = Ground(rt)
    ping = rt.spacecraft.command("PING")
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=0), 1))             # authentic: runs
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=1), 2, sa=GCM))     # authentic, encrypted
    assert rt.tc_accepted == 2
    ground.feed(rt.advance_to(1.5))
    rt.receive_tc_frame(TcFrame(rt.spacecraft.scid, 0, ping.build(sequence_count=2), bypass_flag=1).build())
    ground.feed(rt.advance_to(3.0))
    forged = SecurityAssociation(1, HMAC_SHA256, os.urandom(32))
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=3), 3, sa=forged))
    ground.feed(rt.advance_to(4.5))
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=0), 1))             # the first one, again
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=0), 1))             # and again: counted, no event
    assert rt.tc_accepted == 2
    assert rt.tc.security.rejected == {"unauthenticated": 1, "forged": 1, "replayed": 2}
    ground.feed(rt.advance_to(70))
    assert [(a["reason"], a["spi"], a["sequence_number"], a["rejected"]) for a in event_aux(ground)] == [
        ("UNAUTHENTICATED", 0x1800 | ping.apid, 0, 1), ("FORGED", 1, 3, 1), ("REPLAYED", 1, 1, 1)]
    assert rt.counters["sdls_events_suppressed"] == 1
    assert len(ground.of(17, 2)) == 2  # two pings answered
    obdh = ground.hk("obdh")[-1]
    assert (obdh.sdls_frames_accepted, obdh.sdls_rejected_unauthenticated, obdh.sdls_rejected_forged,
            obdh.sdls_rejected_replayed, obdh.sdls_rejected_out_of_window, obdh.sdls_last_sequence) == (
        2, 1, 1, 2, 0, 2)


def test_ad_frames_are_checked_before_farm1():
    rt = make("haiyang2d", sdls_associations={1: SA}, sdls_window=50)
    ping = rt.spacecraft.command("PING")
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=0), 10, bypass=False, ns=0))
    assert rt.tc.farm.vr == 1 and rt.tc_accepted == 1
    # A replay of an AD frame with the next N(S) is refused by SDLS: V(R) does not move.
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=1), 10, bypass=False, ns=1))
    # A plain AD frame, and a plain Unlock (BC), change nothing either.
    rt.receive_tc_frame(TcFrame(rt.spacecraft.scid, 0, ping.build(sequence_count=1)).build())
    rt.receive_tc_frame(TcFrame(rt.spacecraft.scid, 0, UNLOCK, bypass_flag=1, control_command_flag=1).build())
    assert rt.tc.farm.vr == 1 and rt.tc_accepted == 1
    assert rt.tc.counters["BC_unlock"] == 0
    # Too far ahead: outside the window.
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=1), 61, bypass=False, ns=1))
    assert rt.tc.security.rejected == {"replayed": 1, "unauthenticated": 2, "out_of_window": 1}
    rt.receive_tc_frame(secured(rt, ping.build(sequence_count=1), 60, bypass=False, ns=1))
    rt.receive_tc_frame(secured(rt, UNLOCK, 61, control=True))
    assert rt.tc.farm.vr == 2 and rt.tc_accepted == 2 and rt.tc.counters["BC_unlock"] == 1


def test_required_without_keys_refuses_everything_and_optional_spacecraft_can_use_keys():
    rt = make("haiyang2d", sdls_required=None)
    ping = rt.spacecraft.command("PING")
    rt.receive_tc_frame(TcFrame(rt.spacecraft.scid, 0, ping.build(), bypass_flag=1).build())
    rt.receive_tc_frame(secured(rt, ping.build(), 1))
    assert rt.tc_accepted == 0 and rt.tc.security.rejected == {"unauthenticated": 2}
    plain = make("zhurong", sdls_required=None)
    assert plain.tc.security is None
    keyed = make("zhurong", sdls_required=None, sdls_associations={1: SA})
    keyed.receive_tc_frame(TcFrame(keyed.spacecraft.scid, 0, keyed.spacecraft.command("PING").build(),
                                   bypass_flag=1).build())
    assert keyed.tc_accepted == 0 and keyed.tc.security.rejected == {"unauthenticated": 1}


def test_emulator_key_files_are_checked(tmp_path):
    path = write_key_file(tmp_path / "hy2d.toml", "haiyang2d", [SA])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    emu = Emulator("haiyang2d", downlink="udp://127.0.0.1:9", sdls_key_files=[str(path)], virtual=True)
    assert emu.runtime.tc.security.associations == {1: SA}
    with pytest.raises(EmulatorError, match="is for 'haiyang2d', not 'ilrs-lander'"):
        Emulator("ilrs-lander", downlink="udp://127.0.0.1:9", sdls_key_files=[str(path)])
    path.chmod(0o644)
    with pytest.raises(EmulatorError, match="readable or writable by others .*chmod 0600"):
        Emulator("haiyang2d", downlink="udp://127.0.0.1:9", sdls_key_files=[str(path)])
    path.chmod(0o640)
    assert Emulator("haiyang2d", downlink="udp://127.0.0.1:9", sdls_key_files=[str(path)]).runtime.tc.security
    with pytest.raises(EmulatorError, match="SPI \\[1\\] already given"):
        Emulator("haiyang2d", downlink="udp://127.0.0.1:9", sdls_key_files=[str(path), str(path)])
    (tmp_path / "bad.toml").write_text('spacecraft = "haiyang2d"\n[[sa]]\nspi = 1\nalgorithm = "X"\nkey = "s3cr3t"\n')
    (tmp_path / "bad.toml").chmod(0o600)
    with pytest.raises(EmulatorError, match="bad.toml: sa\\[0\\].algorithm") as err:
        Emulator("haiyang2d", downlink="udp://127.0.0.1:9", sdls_key_files=[str(tmp_path / "bad.toml")])
    assert "s3cr3t" not in str(err.value)
