"""Variable-size packets on the IDEX-like shape: VariablePacketCodec against ccsdspy's VariableLength
and space_packet_parser (an XTCE definition of the same shape, written here).

The shape follows IMAP-IDEX science packets (as shipped with space_packet_parser's and
ccsdspy's examples): a primary header, a 48-bit time, a block of one-octet event
descriptors and a 16-bit event number, then a waveform of 16-bit samples that runs to the
packet's end (its length comes from the packet length field).  A few waveform lengths
alternate, as an instrument's capture modes do.

    python -m benchmarks.variable [--count N] [--write docs/PERFORMANCE.md]
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import construct as cs
import numpy as np

from benchmarks.report import write_section
from protocols.codec import PacketCodec, VariablePacketCodec

APID = 0x56C
DESCRIPTORS = ("type", "cont", "spare", "pack", "frag", "comp", "cat", "trigger")
SAMPLES = (24, 40, 64, 96)  # waveform lengths, in 16-bit samples

IDEX_LIKE = cs.Struct(
    "primary" / cs.BitStruct("version" / cs.BitsInteger(3), "type" / cs.Flag, "secondary" / cs.Flag,
                             "apid" / cs.BitsInteger(11), "flags" / cs.BitsInteger(2), "count" / cs.BitsInteger(14),
                             "length" / cs.BitsInteger(16)),
    "shcoarse" / cs.Int32ub,
    "shfine" / cs.Int16ub,
    *[name / cs.Int8ub for name in DESCRIPTORS],
    "event" / cs.Int16ub,
    "waveform" / cs.GreedyRange(cs.Int16ub),
)


def idex_like_packets(count: int, seed: int = 5) -> bytes:
    """``count`` IDEX-like packets with random contents and waveform lengths from SAMPLES."""
    rng = np.random.default_rng(seed)
    fixed = 6 + 4 + 2 + len(DESCRIPTORS) + 2
    out = bytearray()
    for i in range(count):
        samples = SAMPLES[i % len(SAMPLES)]
        total = fixed + 2 * samples
        header = ((APID | 0x0800) << 32 | (0xC000 | i % 0x4000) << 16 | (total - 7)).to_bytes(6, "big")
        out += header + rng.integers(0, 256, total - 6, dtype=np.uint8).tobytes()
    return bytes(out)


def ccsdspy_definition():
    import ccsdspy
    from ccsdspy import PacketArray, PacketField

    fields = [PacketField("shcoarse", "uint", 32), PacketField("shfine", "uint", 16)]
    fields += [PacketField(name, "uint", 8) for name in DESCRIPTORS]
    fields += [PacketField("event", "uint", 16),
               PacketArray(name="waveform", data_type="uint", bit_length=16, array_shape="expand")]
    return ccsdspy.VariableLength(fields)


#: space_packet_parser's names for the fields (XTCE parameter names are unique across the document,
#: so the descriptors are prefixed: one of them is "type", like the primary header's).
SPP_FIELDS = [("VERSION", 3), ("TYPE", 1), ("SEC_HDR_FLG", 1), ("PKT_APID", 11), ("SEQ_FLGS", 2),
              ("SRC_SEQ_CTR", 14), ("PKT_LEN", 16), ("SHCOARSE", 32), ("SHFINE", 16),
              *[("IDX_" + d.upper(), 8) for d in DESCRIPTORS], ("EVENT", 16)]
FIXED_OCTETS = sum(bits for _, bits in SPP_FIELDS) // 8


def idex_like_xtce() -> bytes:
    """The shape as XTCE 1.2 for space_packet_parser: the waveform a binary parameter whose size in
    bits is 8 x (packet length + 7 - the fixed octets), from the packet length field."""
    def uint(name: str, bits: int) -> str:
        return (f'<xtce:IntegerParameterType name="{name}_t" signed="false">'
                f'<xtce:IntegerDataEncoding sizeInBits="{bits}" encoding="unsigned"/></xtce:IntegerParameterType>')
    types = "".join(uint(n, b) for n, b in SPP_FIELDS)
    types += ('<xtce:BinaryParameterType name="WAVEFORM_t"><xtce:BinaryDataEncoding><xtce:SizeInBits>'
              '<xtce:DynamicValue><xtce:ParameterInstanceRef parameterRef="PKT_LEN"/>'
              f'<xtce:LinearAdjustment slope="8" intercept="{8 * (7 - FIXED_OCTETS)}"/></xtce:DynamicValue>'
              '</xtce:SizeInBits></xtce:BinaryDataEncoding></xtce:BinaryParameterType>')
    names = [n for n, _ in SPP_FIELDS] + ["WAVEFORM"]
    params = "".join(f'<xtce:Parameter name="{n}" parameterTypeRef="{n}_t"/>' for n in names)
    entries = "".join(f'<xtce:ParameterRefEntry parameterRef="{n}"/>' for n in names)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<xtce:SpaceSystem xmlns:xtce="http://www.omg.org/spec/XTCE/20180204" name="IDEX_LIKE">'
            f'<xtce:TelemetryMetaData><xtce:ParameterTypeSet>{types}</xtce:ParameterTypeSet>'
            f'<xtce:ParameterSet>{params}</xtce:ParameterSet><xtce:ContainerSet>'
            f'<xtce:SequenceContainer name="CCSDSPacket"><xtce:EntryList>{entries}</xtce:EntryList>'
            '</xtce:SequenceContainer></xtce:ContainerSet></xtce:TelemetryMetaData></xtce:SpaceSystem>').encode()


def space_packet_parser_rate(data: bytes, ours: dict, count: int) -> float:
    """space_packet_parser's packets/s on the first ``count`` packets (framing and parsing), after
    checking that it reads every field and waveform of them as we do."""
    import io

    from space_packet_parser import generators
    from space_packet_parser.xtce.definitions import XtcePacketDefinition

    definition = XtcePacketDefinition.from_xtce(io.BytesIO(idex_like_xtce()))
    head = bytearray()
    offset = 0
    for _ in range(count):
        length = int.from_bytes(data[offset + 4:offset + 6], "big") + 7
        head += data[offset:offset + length]
        offset += length
    start = time.perf_counter()
    parsed = [definition.parse_bytes(p) for p in generators.ccsds_generator(io.BytesIO(bytes(head)))]
    seconds = time.perf_counter() - start
    assert len(parsed) == count
    for i, packet in enumerate(parsed):
        assert packet["SHCOARSE"] == ours["shcoarse"][i] and packet["EVENT"] == ours["event"][i]
        assert [packet["IDX_" + d.upper()] for d in DESCRIPTORS] == [ours[d][i] for d in DESCRIPTORS]
        assert packet["WAVEFORM"] == ours["waveform"][i].astype(">u2").tobytes()
    return count / seconds


# Housekeeping words, and the same words each also read as an aggregate (a Union of the 32-bit
# pair and its two 16-bit halves): the overlapping views the table decodes without construct.
PLAIN = cs.Struct(*[f"w{i}" / cs.Struct("high" / cs.Int16ub, "low" / cs.Int16ub) for i in range(8)])
OVERLAPPING = cs.Struct(*[f"w{i}" / cs.Union(0, "halves" / cs.Struct("high" / cs.Int16ub, "low" / cs.Int16ub),
                                             "word" / cs.Int32ub) for i in range(8)])


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, help="update this PERFORMANCE.md section")
    args = parser.parse_args(argv)
    logging.getLogger("ccsdspy").setLevel(logging.ERROR)
    data = idex_like_packets(args.count)
    rows = []
    for backend in ("compiled", "pure"):
        codec = VariablePacketCodec(IDEX_LIKE, backend=backend)
        codec.decode_many(data)  # build the per-layout codecs once
        rows.append((f"VariablePacketCodec ({backend})", args.count / _best(lambda c=codec: c.decode_many(data),
                                                                              args.repeats)))
    with tempfile.NamedTemporaryFile(suffix=".bin") as tmp:
        tmp.write(data)
        tmp.flush()
        definition = ccsdspy_definition()
        peer = args.count / _best(lambda: definition.load(tmp.name), max(1, args.repeats // 2))
    rows.append(("ccsdspy `VariableLength.load`", peer))
    ours = VariablePacketCodec(IDEX_LIKE).decode_many(data)
    spp_count = min(args.count, 5000)  # it reads about 30,000 packets/s: a sample is enough
    rows.append((f"space_packet_parser `parse_bytes` (XTCE, {spp_count:,} packets, waveform left as bytes)",
                 space_packet_parser_rate(data, ours, spp_count)))
    records = np.random.default_rng(1).integers(0, 256, 32 * args.count, dtype=np.uint8).tobytes()
    plain, overlapping = PacketCodec(PLAIN), PacketCodec(OVERLAPPING)
    plain_pps = args.count / _best(lambda: plain.decode_many(records), args.repeats)
    overlap_pps = args.count / _best(lambda: overlapping.decode_many(records), args.repeats)
    lines = [f"IDEX-like variable-size packets ({args.count:,} packets, waveforms of {'/'.join(map(str, SAMPLES))} "
             "samples, one process on one core, best of the runs):", "",
             "| decoder | packets/s | vs ccsdspy | vs space_packet_parser |", "|---|---:|---:|---:|"]
    spp = rows[-1][1]
    lines += [f"| {name} | {rate:,.0f} | {rate / peer:.1f}x | {rate / spp:.1f}x |" for name, rate in rows]
    lines += ["", f"Overlapping views (8 words, each also read as a 32-bit Union member): "
              f"{overlap_pps:,.0f} packets/s against {plain_pps:,.0f} without the overlap "
              f"({plain_pps / overlap_pps:.2f}x the time; the target is within 2x)."]
    lines += ["", "space_packet_parser reads the same shape from an XTCE definition written in the benchmark "
              "(`idex_like_xtce`: the waveform a binary parameter sized from the packet length); every field and "
              "waveform it returns is checked equal to ours before the rate counts."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        section = ("<!-- variable:begin (written by `python -m benchmarks.variable`) -->\n"
                   f"## Variable-size packets\n\n{text}\n<!-- variable:end -->\n")
        write_section(args.write, "variable", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
