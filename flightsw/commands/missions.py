"""``flightsw missions``: the spacecraft the emulator can fly, with their packets."""
from __future__ import annotations

import argparse
import json

from flightsw.runtime.core import spacecraft_summary
from protocols.missions import registry


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("missions", help="list the spacecraft the emulator knows and their packets")
    parser.add_argument("--json", action="store_true",
                        help="a JSON list of objects: name, scid, tm_apids, tc_apid, tc_apids, vcids, ...")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flightsw.model import MODELS
    from flightsw.runtime.core import load_models

    load_models()
    summaries = [spacecraft_summary(sc) for sc in registry()]
    for s in summaries:
        s["model"] = MODELS[s["name"]].__name__ if s["name"] in MODELS else "GenericModel"
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    for s in summaries:
        f = s["frame"]
        print(f"{s['name']:<16} SCID {s['scid']:<4} {f['type']} {f['length']} octets"
              f"{' +OCF' if f['ocf'] else ''}{' +FECF' if f['fecf'] else ''}{' randomized' if f['randomized'] else ''}"
              f"  VCs {s['vcids']} (realtime {s['realtime_vc']}, playback {s['playback_vc']})  model {s['model']}")
        print(f"    TM APIDs {s['tm_apids']}  TC APIDs {s['tc_apids']}")
        for h in s["housekeeping"]:
            print(f"    HK {h['name']:<18} APID {h['apid']:<5} SID {h['sid']:<3} every {h['period']:g} s, "
                  f"{h['size']} octets")
        print(f"    commands: {', '.join(s['commands'])}")
    return 0
