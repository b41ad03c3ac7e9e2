"""`groundstation inspect`: look inside a capture (placeholder until the protocol layer lands)."""
from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("inspect", help="decode and print every frame and packet of a capture file")
    parser.add_argument("file")
    parser.set_defaults(func=lambda args: 1)
