"""The Queqiao flight-software emulator: mission models, scheduler, housekeeping, TC handling, links."""
