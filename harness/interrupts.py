"""Ctrl-C and SIGTERM stop a run the same way: records kept, manifest marked, folder named.

`install()` (called by the CLI) makes both signals raise `KeyboardInterrupt` in the main
thread and remembers which one arrived. The handler is ours, not asyncio's: `asyncio.run`
only installs its own SIGINT handler over Python's default one, and that handler turns the
first Ctrl-C into a task cancellation, which code awaiting a cancelled task can swallow (a
late Ctrl-C once let a run finish with exit 1). Ours raises where the signal lands, and the
CLI checks `received()` after the command returns, so an interrupt is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

_received: list[int] = []


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


_raise_at_once: list[bool] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    loop = asyncio._get_running_loop()
    if loop is not None and not _raise_at_once:
        # Inside the event loop, raise from a loop callback, which asyncio propagates out
        # of `run` (then cancels every task, so their `finally` blocks flush what was
        # sampled). Raised here, the signal could land inside a destructor run by the
        # garbage collector, where Python prints "Exception ignored" and drops it.
        loop.call_soon_threadsafe(_raise_interrupt)
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def raising_at_once() -> Iterator[None]:
    """Inside this block a signal raises KeyboardInterrupt where it lands even in the event
    loop: for long calls into C code that check for signals (a regex search, see
    `harness.safe_regex`), which a loop callback would only interrupt after they return."""
    _raise_at_once.append(True)
    try:
        yield
    finally:
        _raise_at_once.pop()


def install() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt and remember the signal."""
    _received.clear()
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def received() -> int | None:
    """The first signal received since `install()`, or None."""
    return _received[0] if _received else None


def exit_code(default_signum: int = signal.SIGINT) -> int:
    """128 + the signal number, as shells report a process stopped by a signal."""
    return 128 + (received() or default_signum)
