"""The merge's bookkeeping and the frame message format, without a broker."""
from __future__ import annotations

import pytest

from groundstation.network.merge import FrameMerger
from groundstation.network.message import Fecf, FrameMessage, MessageError, Quality, Rs, decode, encode, frame_header, message_ids
from protocols.ccsds.tmframe import pack_aos_header, pack_tm_header

WALL = 2_000_000_000.0
CLEAN = Quality()
TM_ROUTE = {(0, 77): "tmsat"}
AOS_ROUTE = {(1, 66): "aossat"}


def tm_frame(count: int, vcid: int = 1, fill: int = 0) -> bytes:
    return pack_tm_header(77, vcid, count, count, 0) + bytes([fill]) * 26


def msg(station: str, frame: bytes, *, receipt: float = WALL - 0.1, quality: Quality = CLEAN) -> FrameMessage:
    return FrameMessage(station, f"{station}-rx", int(receipt * 1e9), quality, frame)


def counts(released) -> list[int]:
    return [r.absolute for r in released]


def test_a_message_round_trips_and_garbage_names_the_field():
    m = msg("perth", tm_frame(5), quality=Quality(Fecf.OK, Rs.CORRECTED, 3, 1))
    assert decode(encode(m)) == m
    with pytest.raises(MessageError, match="magic: octets 0-2 are b'XYZ'"):
        decode(b"XYZ" + encode(m)[3:])
    with pytest.raises(MessageError, match="truncated"):
        decode(encode(m)[:10])
    bad_quality = bytearray(encode(m))
    bad_quality[12] = 9
    with pytest.raises(MessageError, match="fecf 9 .octet 12."):
        decode(bytes(bad_quality))


def test_message_ids_are_reproducible_and_distinct_across_a_wrap_in_one_batch():
    headers = [frame_header(tm_frame(c % 256)) for c in range(250, 262)]
    ids = list(message_ids("perth", "tmsat", 123, headers))
    assert ids == list(message_ids("perth", "tmsat", 123, headers))  # the catch-up sends the same ids
    assert len(set(ids)) == len(ids)
    assert ids[0] == "perth.tmsat.1.123-0.250" and ids[-1] == "perth.tmsat.1.123-1.5"


def test_one_copy_each_best_quality_wins_gaps_filled_in_order():
    merger = FrameMerger(TM_ROUTE, stations=("a", "b"), wait_s=1.0)
    corrected = Quality(Fecf.OK, Rs.CORRECTED, 4)
    for c in (0, 1, 3):
        merger.offer(msg("a", tm_frame(c, fill=0xA), quality=corrected), now=0.0, wall=WALL)
    for c in (0, 2, 3):
        merger.offer(msg("b", tm_frame(c, fill=0xB)), now=0.0, wall=WALL)
    out = merger.release(now=2.0)
    assert counts(out) == [0, 1, 2, 3]
    assert [r.message.station for r in out] == ["b", "a", "b", "b"]  # clean beats corrected
    assert merger.counts[("a", "tmsat")].gaps_filled == 1 and merger.counts[("b", "tmsat")].gaps_filled == 1
    assert merger.counts[("a", "tmsat")].duplicates == 2 and merger.counts[("b", "tmsat")].duplicates == 0
    # The same frames again (a replayed catch-up): all duplicates, nothing released.
    for c in (0, 1, 2, 3):
        assert merger.offer(msg("a", tm_frame(c)), now=3.0, wall=WALL) is None
    assert merger.release(now=9.0) == []
    assert merger.counts[("a", "tmsat")].duplicates == 6


def test_frames_every_site_has_passed_go_without_waiting():
    merger = FrameMerger(TM_ROUTE, stations=("a", "b"), wait_s=10.0)
    for c in range(5):
        merger.offer(msg("a", tm_frame(c)), now=0.0, wall=WALL)
    merger.offer(msg("b", tm_frame(3)), now=0.0, wall=WALL)
    assert counts(merger.release(now=0.0)) == [0, 1, 2]  # b passed 0..2 (it has 3); 3 and 4 may still improve


def test_counts_unwrap_across_the_modulus_and_a_late_frame_is_kept_out_of_order():
    merger = FrameMerger(TM_ROUTE, wait_s=0.5)
    for i in range(250, 262):
        merger.offer(msg("a", tm_frame(i % 256)), now=0.0, wall=WALL)
    assert counts(merger.release(now=1.0)) == list(range(250, 262))
    merger.offer(msg("a", tm_frame(263 % 256)), now=1.0, wall=WALL)
    assert counts(merger.release(now=2.0)) == [263]
    assert merger.offer(msg("b", tm_frame(262 % 256)), now=2.0, wall=WALL) is None
    assert counts(merger.release(now=2.0)) == [262]  # late, but another site's only copy is not lost
    assert merger.counts[("b", "tmsat")].late == 1


def test_aos_counts_are_24_bit():
    merger = FrameMerger(AOS_ROUTE, wait_s=0.0)
    for c in ((1 << 24) - 1, 0, 1):
        merger.offer(msg("a", pack_aos_header(66, 2, c) + bytes(20)), now=0.0, wall=WALL)
    assert counts(merger.release(now=1.0)) == [(1 << 24) - 1, 1 << 24, (1 << 24) + 1]


def test_bad_input_is_counted_never_merged():
    merger = FrameMerger(TM_ROUTE, wait_s=0.0, max_age_s=600, clock_skew_s=2)
    assert merger.offer(msg("a", b"\x00\x01"), now=0.0, wall=WALL) == "truncated"
    assert merger.offer(msg("a", pack_tm_header(99, 1, 0, 0, 0) + bytes(4)), now=0.0, wall=WALL) == \
        "unknown_spacecraft"
    assert merger.offer(msg("a", tm_frame(7), receipt=WALL - 3600), now=0.0, wall=WALL) == "stale"  # old pass
    assert merger.counts[("a", "tmsat")].rejected == {"stale": 1}
    assert merger.counts[("a", "undeclared")].rejected == {"truncated": 1, "unknown_spacecraft": 1}
    # A clock an hour fast: taken, ranked by arrival, so a sane site's equal copy wins the tie.
    merger.offer(msg("skewed", tm_frame(8), receipt=WALL + 3600), now=0.0, wall=WALL)
    merger.offer(msg("sane", tm_frame(8), receipt=WALL - 1), now=0.0, wall=WALL)
    (out,) = merger.release(now=1.0)
    assert out.message.station == "sane" and merger.counts[("skewed", "tmsat")].clock_skew == 1


def test_a_site_far_behind_the_others_is_placed_by_its_receipt_times():
    """Site c's copies reach the merge after 600 frames of a and b (more than twice the TM count's
    modulus): placed by when c received them, each lands on its own frame, the ones a and b lost
    fill their gaps (late, out of order, not lost) and the rest are duplicates, not new frames."""
    def frame(k: int) -> bytes:
        return pack_tm_header(77, 1, k % 256, k % 256, 0) + k.to_bytes(2, "big") + bytes(24)

    def receipt(k: int) -> float:
        return WALL - 10.0 + k * 0.005  # 200 frames/s

    lost_by_a_and_b = {100, 101, 102, 350, 599}
    merger = FrameMerger(TM_ROUTE, wait_s=0.05)
    released = []
    for k in range(600):
        for site in ("a", "b"):
            if k not in lost_by_a_and_b:
                merger.offer(msg(site, frame(k), receipt=receipt(k)), now=k * 0.005, wall=WALL)
        released += merger.release(now=k * 0.005)
    for k in range(600):  # c had every frame, and sends them all now
        merger.offer(msg("c", frame(k), receipt=receipt(k)), now=3.0 + k * 1e-4, wall=WALL)
    released += merger.release(now=10.0, flush=True)
    first = released[0].absolute
    placed = [(r.absolute - first, int.from_bytes(r.message.frame[6:8], "big")) for r in released]
    assert all(at == k for at, k in placed)  # every copy on its own frame, none a cycle off
    assert sorted(k for _, k in placed) == list(range(600))  # each frame once
    c = merger.counts[("c", "tmsat")]
    # 100-102 and 350 went out of order (late), 599 in order: the last frame was still to come.
    assert (c.late, c.chosen, c.duplicates) == (4, 5, 595)


def test_the_uplink_goes_to_the_site_with_the_latest_good_clcw():
    from groundstation.network.merge import Released
    from groundstation.network.uplink import UplinkRouter

    router = UplinkRouter({"tmsat": True, "aossat": False}, default="a")
    assert router.site("tmsat") == "a" and router.site("aossat") == "a"  # before any frame: the first site

    def released(site: str, quality: Quality = CLEAN, spacecraft: str = "tmsat") -> Released:
        return Released(spacecraft, 1, 0, msg(site, tm_frame(0), quality=quality), frozenset({site}))

    router.observe([released("b"), released("c", Quality(Fecf.BAD))])
    assert router.site("tmsat") == "b"  # c's CLCW did not pass its FECF: not trusted
    router.observe([released("c", Quality(Fecf.OK, Rs.UNCORRECTABLE))])
    assert router.site("tmsat") == "b"
    router.observe([released("c", Quality(Fecf.OK, Rs.CORRECTED, 2))])
    assert router.site("tmsat") == "c"  # corrected is good
    router.observe([released("c", spacecraft="aossat")])
    assert router.site("aossat") == "a"  # no OCF in its frames: no CLCW to choose by
    assert UplinkRouter({"tmsat": True}, default=None).site("tmsat") is None
