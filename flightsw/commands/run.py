"""``flightsw run``: fly one spacecraft on a downlink (and uplink) until stopped."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime

from flightsw.core.faults import parse_duration


def _passes(text: str) -> list[tuple[float, float]]:
    """``START-END[,START-END...]`` in sim time (durations: 90, 10m, 1h...)."""
    windows = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" not in part:
            raise argparse.ArgumentTypeError(f"pass window {part!r}: expected START-END, e.g. 0-10m")
        a, b = part.split("-", 1)
        try:
            windows.append((parse_duration(a), parse_duration(b)))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"pass window {part!r}: {exc}") from None
    if not windows:
        raise argparse.ArgumentTypeError("empty pass schedule")
    return windows


def _utc(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 UTC time, e.g. 2021-05-22T02:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _hk_period(text: str) -> tuple[str, float]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected PACKET=SECONDS, e.g. power=2")
    return name.strip(), _positive(value)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="emulate a spacecraft: telemetry frames down, telecommands up",
                              description="Emulate one spacecraft of the mission database on a downlink "
                                          "(and uplink) until stopped (SIGINT/SIGTERM) or --duration.")
    p.add_argument("--mission", required=True, help="spacecraft name (see `flightsw missions`)")
    p.add_argument("--downlink", required=True, metavar="URL",
                   help="udp://HOST:PORT, tcp://HOST:PORT, tcp-listen://HOST:PORT, serial:///dev/ttyX?baud=N, "
                        "file:///path, mqtt://HOST:PORT/PREFIX")
    p.add_argument("--uplink", metavar="URL", help="where telecommands come from (udp binds it); default: the "
                   "downlink's own return direction for tcp, tcp-listen, serial and mqtt")
    p.add_argument("--seed", type=int, default=0, help="seed of the model and the faults (default 0)")
    p.add_argument("--duration", type=_positive, metavar="S", help="stop after S simulated seconds")
    p.add_argument("--time-scale", type=_positive, default=1.0, metavar="X",
                   help="simulated seconds per wall-clock second (frame rate scales too; default 1)")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault (repeatable), e.g. stuck:zhurong.power.battery_voltage@t=60, "
                        "drop-frames:p=0.1, link-outage:start=30,duration=60")
    p.add_argument("--pass-schedule", type=_passes, metavar="WINDOWS",
                   help="ground passes in sim time, START-END[,...] (e.g. 0-10m,1h-1h10m); outside them "
                        "telemetry is stored onboard (default: always in contact)")
    p.add_argument("--start", type=_utc, metavar="ISO-UTC", help="UTC at sim time 0 (default: now)")
    p.add_argument("--bitrate", type=_positive, metavar="BIT/S",
                   help="downlink channel bit rate (default: the mission's symbol rate, else 64000)")
    p.add_argument("--hk-period", type=_hk_period, action="append", default=[], metavar="PACKET=S",
                   help="housekeeping period of one packet (repeatable; default: the mission database's)")
    p.add_argument("--store-bytes", type=int, default=4 << 20, help="capacity of each packet store (default 4 MiB)")
    p.add_argument("--farm-window", type=int, default=10, help="FARM-1 sliding window width (even, default 10)")
    p.add_argument("--tc-vcid", type=int, default=0, help="virtual channel of telecommand frames (default 0)")
    p.add_argument("--drift-ppm", type=float, default=0.0, help="onboard clock drift (default 0)")
    p.add_argument("--epoch", type=_utc, metavar="ISO-UTC",
                   help="onboard time epoch (default: CCSDS 1958-01-01 TAI)")
    p.add_argument("--flood", action="store_true",
                   help="send housekeeping as fast as the CPU allows, ignoring the frame rate (load tests)")
    p.add_argument("--tc-randomized", action="store_true", help="CLTUs carry randomized TC frames")
    p.add_argument("--sdls-keys", action="append", default=[], metavar="FILE",
                   help="SDLS key file (CCSDS 355.0-B-2 security associations; mode 0600/0640) whose keys "
                        "telecommand frames must be authenticated with (repeatable)")
    p.add_argument("--sdls-window", type=int, default=None, metavar="N",
                   help="SDLS anti-replay window: how far beyond the last accepted sequence number a frame "
                        "may be (default 65536)")
    datagrams = p.add_mutually_exclusive_group()
    datagrams.add_argument("--datagram-cadus", action="store_const", const=True, dest="datagram_cadus",
                           help="on a udp or mqtt downlink, send one CADU (ASM + randomized, RS-coded block) per "
                                "datagram (the default for a spacecraft with a Reed-Solomon code)")
    datagrams.add_argument("--datagram-frames", action="store_const", const=False, dest="datagram_cadus",
                           help="on a udp or mqtt downlink, send each transfer frame as it is, as a station that "
                                "has decoded the RS code would (the default for a spacecraft without one)")
    p.add_argument("--command-log", metavar="FILE",
                   help="append each telecommand handed to execution to FILE, one JSON object per line "
                        "(sim_time, apid, sequence_count, command, arguments): the onboard record to "
                        "check the ground's verification against")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flightsw.runtime import Emulator, EmulatorError

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emulator = Emulator(args.mission, downlink=args.downlink, uplink=args.uplink, seed=args.seed,
                            time_scale=args.time_scale, faults=args.fault, start=args.start,
                            duration=args.duration, passes=args.pass_schedule, bitrate=args.bitrate,
                            store_bytes=args.store_bytes, farm_window=args.farm_window, tc_vcid=args.tc_vcid,
                            drift_ppm=args.drift_ppm, epoch=args.epoch, tc_randomized=args.tc_randomized,
                            flood=args.flood, hk_periods=dict(args.hk_period), sdls_key_files=args.sdls_keys,
                            command_log=args.command_log, datagram_cadus=args.datagram_cadus,
                            **({"sdls_window": args.sdls_window} if args.sdls_window is not None else {}))
    except EmulatorError as exc:
        print(f"flightsw run: error: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, emulator.stop)
        await emulator.run()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"flightsw run: error: {exc}", file=sys.stderr)
        return 2
    status = emulator.status()
    print(f"flightsw run: {args.mission} stopped after {status['sim_time']:.1f} s simulated; "
          f"{emulator.frames_sent} frames, {status['counters'].get('packets', 0)} packets, "
          f"{status['counters'].get('tc_accepted', 0)} telecommands accepted", file=sys.stderr)
    return 0
