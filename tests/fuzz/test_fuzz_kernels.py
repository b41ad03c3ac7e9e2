"""Differential fuzzing of the kernels: the pure-Python twin and the compiled kernel get the same
arbitrary arguments (in range or not) and must agree on the result or both raise KernelArgumentError.
The field-table kernels are covered through PacketCodec in test_fuzz_chain.py (both backends)."""
from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

import cython_ext
from cython_ext.buffers import KernelArgumentError
from protocols.ccsds.sync import ASM
from tests.fuzz.support import count, fuzz

PAIRS = {name: (cython_ext.twin(name), cython_ext.compiled(name)) for name in ("sync", "packets", "crc", "randomizer")}


def test_both_sides_are_there():
    assert all(compiled is not None for _, compiled in PAIRS.values()), "build the kernels: setup.py build_ext"


def same(name: str, function: str, *args):
    """Call ``function`` on both implementations; both results (or both KernelArgumentErrors) must agree."""
    outcomes: list[tuple[str, object]] = []
    for module in PAIRS[name]:
        try:
            result = getattr(module, function)(*args)
        except KernelArgumentError as exc:
            outcomes.append(("error", exc.field))
            continue
        flat = result if isinstance(result, tuple) else (result,)
        outcomes.append(("ok", tuple(np.asarray(x).tolist() if isinstance(x, np.ndarray) else x for x in flat)))
    assert outcomes[0] == outcomes[1], (function, outcomes)
    return outcomes[0]




def _one_bit_off(bit: int) -> bytes:
    return bytes(b ^ (1 << bit % 8) if i == bit // 8 else b for i, b in enumerate(ASM))


streams = st.lists(st.one_of(st.binary(max_size=40), st.just(ASM), st.integers(0, 31).map(_one_bit_off)),
                   max_size=10).map(b"".join)
starts = st.one_of(st.integers(-3, 80), st.integers(-(2**62), 2**62))
markers = st.one_of(st.just(ASM), st.binary(min_size=0, max_size=10))


@fuzz
@given(streams, starts, markers, st.integers(-1, 6))
@example(b"\x1a\xcf\xfc\x1d", -1, ASM, 0)  # a negative start read before the buffer (compiled)
@example(b"", 0, b"", 2)  # an empty marker read before the buffer (compiled)
def test_find_asm(buffer, start, marker, errors):
    count("kernel_find_asm")
    same("sync", "find_asm", buffer, start, marker, errors)
    same("sync", "find_all_asm", buffer, start, marker, errors)


@fuzz
@given(streams, st.integers(-5, 60), starts, markers, st.integers(-1, 6))
@example(b"\x1a\xcf\xfc\x1d" * 3, 4, -1, ASM, 0)  # a negative start segfaulted (compiled)
def test_lock_frames(buffer, cadu, start, marker, errors):
    count("kernel_lock_frames")
    outcome = same("sync", "lock_frames", buffer, cadu, start, marker, errors)
    if outcome[0] == "ok":
        offsets, resume = outcome[1]
        assert all(0 <= o <= len(buffer) - cadu for o in offsets) and resume >= 0


@fuzz
@given(streams, st.integers(-3, 60), markers)
def test_bit_errors(buffer, offset, marker):
    count("kernel_bit_errors")
    same("sync", "bit_errors", buffer, offset, marker)


packet_streams = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 0x7FF), st.integers(1, 40)), max_size=12).map(
    lambda specs: b"".join(bytes([v << 5 | a >> 8, a & 0xFF, 0xC0, 0, (n - 1) >> 8, (n - 1) & 0xFF]) + bytes(n)
                           for v, a, n in specs))


@fuzz
@given(st.one_of(packet_streams, st.binary(max_size=200)), starts, st.one_of(st.integers(-2, 70), st.just(65542)))
@example(b"\x00" * 12, -6, 65542)  # a negative start read before the buffer (compiled)
def test_split_packets(buffer, start, max_length):
    count("kernel_split_packets")
    same("packets", "split_packets", buffer, start, max_length)


@fuzz
@given(st.integers(0, 20), st.integers(0, 40), st.data())
@example(16, 11, None)  # the twin never returned here (a negative first header pointer)
def test_extract_packets(frames, width, data):
    count("kernel_extract_packets")
    if data is None:
        fields = np.zeros((16, 11), np.uint8)
        fhp = [1, 2047, 10, 0, 5, 10, 11, 11, -1, 5, -1, 10, 0, 2, 2047, 5]
        continuous = [False, True, True, True, True, False, True, False, True, False, True, True, True, True, True,
                      True]
        same("packets", "extract_packets", fields, fhp, continuous, False)
        return
    raw = data.draw(st.binary(min_size=frames * width, max_size=frames * width))
    fields = np.frombuffer(raw, np.uint8).reshape(frames, width) & data.draw(st.sampled_from([0x1F, 0xFF]))
    fhp = data.draw(st.lists(st.one_of(st.integers(-3, width + 2), st.sampled_from([0x7FE, 0x7FF])),
                             min_size=frames, max_size=frames))
    continuous = data.draw(st.lists(st.booleans(), min_size=frames, max_size=frames))
    drop_idle = data.draw(st.booleans())
    outcome = same("packets", "extract_packets", fields, fhp, continuous, drop_idle)
    offsets, lengths = outcome[1][0], outcome[1][1]
    assert all(0 <= o and o + n <= frames * width for o, n in zip(offsets, lengths, strict=True))


@fuzz
@given(st.binary(max_size=300), st.data())
def test_crc(buffer, data):
    count("kernel_crc")
    same("crc", "crc16", buffer, data.draw(st.integers(0, 0xFFFF)))
    n = data.draw(st.integers(0, 6))
    offsets = data.draw(st.lists(st.integers(-2, len(buffer) + 2), min_size=n, max_size=n))
    lengths = data.draw(st.lists(st.integers(-2, len(buffer) + 2), min_size=n, max_size=n))
    same("crc", "crc16_many", buffer, offsets, lengths)
    same("crc", "crc16_strided", buffer, data.draw(st.integers(-1, 40)), data.draw(st.integers(-1, 40)))


@fuzz
@given(st.binary(max_size=300), st.integers(-2, 60), st.data())
def test_randomizer(buffer, frame_length, data):
    count("kernel_randomizer")
    same("randomizer", "tm_randomize_many", buffer, frame_length)
    offsets = data.draw(st.lists(st.integers(-2, len(buffer) + 2), max_size=6))
    same("randomizer", "tm_derandomize_frames", buffer, np.array(offsets, dtype=np.int64), frame_length)
    same("randomizer", "tm_derandomize_check", buffer, np.array(offsets, dtype=np.int64), frame_length)
