"""Sampling progress with rate and time left, through tqdm.

* On a terminal: a tqdm bar (count, percentage, samples/s, elapsed and time left).
* Not on a terminal (CI logs, cron mail, pipes): one plain line about every 10 s, formatted
  by tqdm too, e.g. `harness: 1,240/4,800 samples (26%) | 41.3 samples/s | elapsed 00:30 |
  about 01:26 left`, and a closing line when any was printed. A log that shows nothing for
  minutes looks like a hang; a redrawn bar (carriage returns) is unreadable there.
* `enabled=False`: silent.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

PLAIN_INTERVAL_S = 10.0
_PLAIN_FORMAT = ("harness: {n_fmt}/{total_fmt} samples ({percentage:.0f}%) | {rate_fmt} | "
                 "elapsed {elapsed} | about {remaining} left")


class Progress:
    """Progress of `total` samples. `enabled`: True a bar, False nothing, None (default)
    a bar on a terminal and plain lines every ~10 s otherwise ($CI set counts as not a
    terminal)."""

    def __init__(self, total: int, enabled: bool | None, *, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 interval_s: float = PLAIN_INTERVAL_S) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = max(total, 1)
        self.done = 0
        self._clock = clock
        self._t0 = clock()
        self._interval = interval_s
        self._next_line = self._t0 + interval_s
        self._lines = 0
        self._bar: Any = None
        if enabled is None:
            tty = getattr(self.stream, "isatty", lambda: False)()
            from harness.settings import environment

            self.mode = "bar" if tty and not environment().ci else "lines"
        else:
            self.mode = "bar" if enabled else "off"
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=" samples", unit_scale=False,
                             file=self.stream, dynamic_ncols=True, mininterval=0.2,
                             smoothing=0.1, leave=True)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def line(self) -> str:
        """The plain progress line for now."""
        from tqdm import tqdm

        elapsed = max(self._clock() - self._t0, 1e-9)
        return str(tqdm.format_meter(self.done, self.total, elapsed, unit=" samples",
                                     bar_format=_PLAIN_FORMAT)).replace("  samples", " samples")

    def advance(self, k: int) -> None:
        """`k` more samples are done."""
        self.done += k
        if self.mode == "bar":
            self._bar.update(k)
        elif self.mode == "lines":
            now = self._clock()
            if now >= self._next_line:
                self._next_line = now + self._interval
                self._write(self.line())

    def _write(self, text: str) -> None:
        self._lines += 1
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the bar, or print the closing line when plain lines were printed."""
        if self.mode == "bar":
            self._bar.close()
        elif self.mode == "lines" and self._lines:
            self._write(self.line())
