"""Rate-limited logging for the chain: bad input must not flood the log."""
from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """At most ``burst`` lines per ``window`` seconds per key; the rest are counted and summarised."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window: float = 10.0) -> None:
        self.logger, self.burst, self.window = logger, burst, window
        self._state: dict[str, list] = {}

    def warning(self, key: str, message: str, *args) -> None:
        self._log(key, logging.WARNING, message, args, exc_info=False)

    def exception(self, key: str, message: str, *args) -> None:
        """An error with its traceback (call from an ``except`` block), rate-limited like the rest."""
        self._log(key, logging.ERROR, message, args, exc_info=True)

    def _log(self, key: str, level: int, message: str, args: tuple, *, exc_info: bool) -> None:
        now = time.monotonic()
        start, count, suppressed = self._state.get(key, (now, 0, 0))
        if now - start > self.window:
            if suppressed:
                self.logger.log(level, "%s: %d more like this suppressed", key, suppressed)
            start, count, suppressed = now, 0, 0
        if count < self.burst:
            self.logger.log(level, message, *args, exc_info=exc_info)
            count += 1
        else:
            suppressed += 1
        self._state[key] = [start, count, suppressed]
