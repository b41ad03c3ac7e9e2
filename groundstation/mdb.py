"""`groundstation mdb export`: write the mission database in an exchange format (XTCE 1.2).

    groundstation mdb export zhurong --format xtce -o zhurong.xml
    groundstation mdb export --all --format xtce -o mdb/          # one <spacecraft>.xml per spacecraft

The conversion is :func:`protocols.xtce.to_xtce`; this module only finds the spacecraft and
writes the files.  Exit status: 0 written, 2 unknown spacecraft or a file that cannot be written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocols.errors import DefinitionError

FORMATS = ("xtce",)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("mdb", help="the mission database in exchange formats (XTCE 1.2)",
                                   description="Work with the mission database as other ground systems see it.")
    actions = parser.add_subparsers(dest="mdb_command", metavar="ACTION")
    export = actions.add_parser("export", help="write a spacecraft's definitions as XTCE 1.2",
                                description="Write one spacecraft (or --all, one file each) as an XTCE 1.2 "
                                            "document that Yamcs and space_packet_parser load.")
    export.add_argument("spacecraft", nargs="?", help="spacecraft name or SCID (or --all)")
    export.add_argument("--all", action="store_true", help="every spacecraft of the mission database")
    export.add_argument("--format", choices=FORMATS, default="xtce", help="exchange format (default xtce)")
    export.add_argument("-o", "--output", metavar="PATH",
                        help="file to write (default standard output); with --all a directory (default .)")
    export.set_defaults(func=run_export)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _fail(message: str) -> int:
    sys.stderr.write(f"groundstation mdb export: {message}\n")
    return 2


def run_export(args: argparse.Namespace) -> int:
    from protocols.missions import registry
    from protocols.xtce import to_xtce

    reg = registry()
    if args.all == (args.spacecraft is not None):
        return _fail("name one spacecraft or give --all")
    if args.all:
        crafts = list(reg)
    else:
        key = int(args.spacecraft) if args.spacecraft.isdigit() else args.spacecraft
        try:
            crafts = [reg.spacecraft(key)]
        except KeyError as exc:
            return _fail(str(exc.args[0]))
    try:
        documents = {sc.name: to_xtce(sc) for sc in crafts}
    except DefinitionError as exc:
        return _fail(str(exc))
    try:
        if args.all:
            folder = Path(args.output or ".")
            folder.mkdir(parents=True, exist_ok=True)
            for name, document in documents.items():
                (folder / f"{name}.xml").write_bytes(document)
                sys.stderr.write(f"{folder / f'{name}.xml'}: {len(document)} octets\n")
        elif args.output in (None, "-"):
            sys.stdout.buffer.write(next(iter(documents.values())))
        else:
            Path(args.output).write_bytes(next(iter(documents.values())))
    except OSError as exc:
        return _fail(f"cannot write {exc.filename}: {exc.strerror}")
    return 0
