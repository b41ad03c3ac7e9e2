"""`flightsw` command line: a thin dispatcher over the modules that implement sub-commands."""
from __future__ import annotations

import sys

from protocols.cli import command_line

#: Modules contributing sub-commands (each has ``add_parser``), in --help order.
COMMAND_MODULES: tuple[str, ...] = ("flightsw.commands.missions", "flightsw.commands.run")

main = command_line(
    "flightsw",
    "Queqiao flight-software emulator: a CCSDS spacecraft for a dev board or a laptop.",
    COMMAND_MODULES,
)

if __name__ == "__main__":
    sys.exit(main())
