"""The fast path: flat field tables derived from construct definitions, run over many packets.

- :class:`PacketCodec` — ``decode_many`` / ``raw_many`` / ``encode_many`` of one fixed-size packet definition.
- :class:`VariablePacketCodec` — ``decode_many`` of a definition with variable-size parts, grouped by layout.
- :func:`split_packets` — offsets, lengths, APIDs and sequence counts of a concatenated packet stream.
- :func:`extract_packets` — packets out of a batch of same-VC transfer frame data fields (first header pointers).

See docs/CODEC.md.
"""
from protocols.codec.codec import CRC_OK, Columns, FieldInfo, PacketCodec, flatten, unflatten
from protocols.codec.stream import FramePackets, PacketSplit, extract_packets, split_packets
from protocols.codec.variable import Ragged, VariablePacketCodec, minimum_size, variable_parts

__all__ = ["CRC_OK", "Columns", "FieldInfo", "FramePackets", "PacketCodec", "PacketSplit", "Ragged",
           "VariablePacketCodec", "extract_packets", "flatten", "minimum_size", "split_packets", "unflatten",
           "variable_parts"]
