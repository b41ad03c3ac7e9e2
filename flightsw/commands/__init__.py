"""Sub-commands of the ``flightsw`` command line (each module has ``add_parser``)."""
