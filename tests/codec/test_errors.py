"""PacketCodec raises only project errors (ProtocolError), whatever the bytes, for every mission definition."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from protocols.codec import PacketCodec
from protocols.errors import ProtocolError
from protocols.missions import registry


def codec_for(spacecraft: str, name: str) -> PacketCodec:
    packet = registry().spacecraft(spacecraft).packet(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # construct-fallback definitions warn once
        return PacketCodec(packet.construct, name=packet.name)


def test_a_telecommand_const_that_differs_is_a_protocol_error():
    # Regression: the construct fallback let construct's ConstError through for the TC definitions.
    codec = codec_for("zhurong", "SET_HK_PERIOD")
    buffer = bytes(range(200, 200 + codec.size)) * 2
    with pytest.raises(ProtocolError) as info:
        codec.decode_many(buffer)
    assert info.value.structure == "SET_HK_PERIOD" and info.value.field and info.value.offset is not None
    with pytest.raises(ProtocolError) as info:
        codec.decode_many(buffer, offsets=[codec.size])
    assert info.value.offset >= codec.size  # counted from the caller's buffer, not the packet


@pytest.mark.parametrize("spacecraft", registry().names)
def test_random_bytes_decode_or_raise_protocol_errors(spacecraft):
    rng = np.random.default_rng(12)
    for packet in registry().spacecraft(spacecraft).packets:
        codec = codec_for(spacecraft, packet.name)
        for _ in range(5):
            buffer = rng.integers(0, 256, codec.size * 3, dtype=np.uint8).tobytes()
            try:
                columns = codec.decode_many(buffer)
            except ProtocolError:
                continue
            assert all(len(v) == 3 for v in columns.values())
