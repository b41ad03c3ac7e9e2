"""`groundstation` command line: a thin dispatcher over the modules that implement sub-commands."""
from __future__ import annotations

import sys

import argcomplete

from protocols.cli import command_line

#: Modules contributing sub-commands (each has ``add_parser``), in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "groundstation.daemon", "groundstation.demo", "groundstation.replay", "groundstation.inspect", "groundstation.send",
    "groundstation.command_list", "groundstation.watch", "groundstation.events_cli", "groundstation.parameter_history",
    "groundstation.config", "groundstation.mdb",
)

main = command_line(
    "groundstation",
    "Queqiao ground station: receive, archive, decode and export CCSDS telemetry.",
    COMMAND_MODULES,
    # Bash completion: answers and exits when the shell's completion hook runs us (README, Commanding).
    prepare=argcomplete.autocomplete,
)

if __name__ == "__main__":
    sys.exit(main())
