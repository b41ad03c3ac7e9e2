"""Every public kernel entry checks its arguments: a bad start, length or marker is a KernelArgumentError
(a ProtocolError naming the kernel and the argument), never a read outside the buffer, in compiled and pure alike."""
from __future__ import annotations

import numpy as np
import pytest

import cython_ext
from cython_ext.buffers import KernelArgumentError
from protocols.ccsds.sync import ASM, FrameSynchronizer
from protocols.errors import ProtocolError

FAMILIES = ("sync", "packets", "crc", "randomizer")


def implementations(name: str):
    found = [cython_ext.twin(name)]
    if cython_ext.compiled(name) is not None:
        found.append(cython_ext.compiled(name))
    return found


def every(name: str):
    return pytest.mark.parametrize("kernel", implementations(name), ids=lambda m: m.__name__)


def test_the_compiled_kernels_are_under_test():
    # Under QUEQIAO_PURE_PYTHON the compiled modules are still importable: both sides are always checked.
    assert all(cython_ext.compiled(name) is not None for name in FAMILIES)


BUFFER = ASM + bytes(60)


@every("sync")
@pytest.mark.parametrize("start", [-1, -4, -(2**40), len(BUFFER) + 1])
@pytest.mark.parametrize("errors", [0, 2])
def test_sync_starts_outside_the_buffer(kernel, start, errors):
    for call in (lambda: kernel.find_asm(BUFFER, start, ASM, errors),
                 lambda: kernel.find_all_asm(BUFFER, start, ASM, errors),
                 lambda: kernel.lock_frames(BUFFER, 16, start, ASM, errors)):
        with pytest.raises(KernelArgumentError) as info:
            call()
        assert info.value.field == "start" and str(start) in str(info.value)


@every("sync")
def test_sync_start_at_the_end_is_an_empty_search(kernel):
    assert kernel.find_asm(BUFFER, len(BUFFER), ASM, 1) == -1
    assert kernel.find_all_asm(BUFFER, len(BUFFER), ASM, 0).tolist() == []
    assert kernel.lock_frames(BUFFER, 16, len(BUFFER))[0].tolist() == []


@every("sync")
def test_sync_markers_and_lengths(kernel):
    with pytest.raises(KernelArgumentError, match="marker"):
        kernel.find_asm(BUFFER, 0, b"", 1)
    with pytest.raises(KernelArgumentError, match="marker"):
        kernel.find_all_asm(BUFFER, 0, b"", 0)
    with pytest.raises(KernelArgumentError, match="cadu_length"):
        kernel.lock_frames(BUFFER, 3)
    with pytest.raises(KernelArgumentError, match="cadu_length"):
        kernel.lock_frames(BUFFER, -8)
    with pytest.raises(KernelArgumentError, match="offset"):
        kernel.bit_errors(BUFFER, -1)


@every("packets")
def test_split_packets_start_and_max_length(kernel):
    packet = bytes([0x08, 0x01, 0xC0, 0x00, 0x00, 0x00, 0xAB])
    for start in (-1, -7, len(packet) + 1):
        with pytest.raises(KernelArgumentError, match="start"):
            kernel.split_packets(packet, start)
    with pytest.raises(KernelArgumentError, match="max_length"):
        kernel.split_packets(packet, 0, 0)
    assert kernel.split_packets(packet, len(packet))[2:] == (len(packet), 0)


@every("packets")
def test_extract_packets_shapes(kernel):
    with pytest.raises(KernelArgumentError, match="data_fields"):
        kernel.extract_packets(np.zeros(8, np.uint8), [0], [True])
    with pytest.raises(KernelArgumentError, match="fhp"):
        kernel.extract_packets(np.zeros((2, 8), np.uint8), [0], [True, True])


@every("packets")
@pytest.mark.timeout(10)
def test_extract_packets_negative_first_header_pointer_is_no_start(kernel):
    # Regression: the twin took fhp -1 as a packet start one octet before the frame, walked backwards and
    # never returned on this 16-frame batch (the compiled kernel skipped it); both now skip it.  Zero-filled
    # frames are 7-octet packets back to back; the pointers that disagree with them cost packets, counted.
    fhp = [1, 2047, 10, 0, 5, 10, 11, 11, -1, 5, -1, 10, 0, 2, 2047, 5]
    continuous = [False, True, True, True, True, False, True, False, True, False, True, True, True, True, True, True]
    fields = np.zeros((16, 11), np.uint8)
    offsets, lengths, frames, tail, lost, errors = kernel.extract_packets(fields, fhp, continuous, False)
    assert offsets.tolist() == [1, 33, 132, 145] and lengths.tolist() == [7] * 4
    assert frames.tolist() == [0, 3, 12, 13] and (tail, lost, errors) == (170, 9, 8)


@every("crc")
def test_crc_slices(kernel):
    with pytest.raises(KernelArgumentError, match="offsets"):
        kernel.crc16_many(b"abcdef", [-1], [2])
    with pytest.raises(KernelArgumentError, match="offsets"):
        kernel.crc16_many(b"abcdef", [4], [3])
    with pytest.raises(KernelArgumentError, match="crc_length"):
        kernel.crc16_strided(b"abcdef", 2, 3)


@every("randomizer")
def test_randomizer_frames(kernel):
    with pytest.raises(KernelArgumentError, match="frame_length"):
        kernel.tm_randomize_many(b"abcdef", 4)
    with pytest.raises(KernelArgumentError, match="offsets"):
        kernel.tm_derandomize_frames(b"abcdef", [-1], 2)
    with pytest.raises(KernelArgumentError, match="offsets"):
        kernel.tm_derandomize_check(b"abcdef", [5], 2)


def test_kernel_errors_are_protocol_errors():
    assert issubclass(KernelArgumentError, ProtocolError)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("flywheel", [0, 1, 2])
def test_synchroniser_terminates_when_search_tolerates_more_than_lock(flywheel):
    # Regression: with search_bit_errors > max_bit_errors the search acquired a marker the lock then
    # refused, the loss sent the search back to the same marker, for ever.  The acquired marker is accepted.
    damaged = bytearray(ASM)
    damaged[0] ^= 0x03  # 2 bit errors: found by the search (3), refused by the lock (0)
    stream = (bytes(damaged) + bytes(10)) * 5 + ASM + bytes(10)
    sync = FrameSynchronizer(10, max_bit_errors=0, search_bit_errors=3, flywheel=flywheel, derandomize=False)
    result = sync.feed(stream)
    result.frames += sync.flush().frames
    assert [f.offset for f in result.frames] == [4 + 14 * i for i in range(6)]
    assert sum(f.marker_errors for f in result.frames) == 10
