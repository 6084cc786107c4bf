"""Run `harness ...` in this process and report when its first request left (bench only).

    python bench/_timeline.py OUT.json run SUITE --target openai:... --base-url URL ...

Writes OUT.json with `first_connect_unix` (time.time() of the first TCP connect the process
made: the openai client connects when it sends its first request) and `cpu_at_connect_s`
(process CPU seconds by then), so the caller, which knows when it spawned the process, gets
"start-up to first request" from outside the harness's own clocks. The hook wraps
`socket.socket.connect`, which asyncio's `sock_connect` calls; it costs one comparison per
connect and is installed before anything of the harness is imported.
"""

from __future__ import annotations

import atexit
import json
import socket
import sys
import time

_OUT = sys.argv[1]
_seen: dict[str, float] = {}
_connect = socket.socket.connect


def _timed_connect(self: socket.socket, address: object) -> None:
    if "first_connect_unix" not in _seen and self.family in (socket.AF_INET, socket.AF_INET6):
        _seen["first_connect_unix"] = time.time()
        _seen["cpu_at_connect_s"] = time.process_time()
    _connect(self, address)  # type: ignore[arg-type]


def _write() -> None:
    _seen["exit_unix"] = time.time()
    _seen["cpu_at_exit_s"] = time.process_time()
    with open(_OUT, "w", encoding="utf-8") as fh:
        json.dump(_seen, fh)


socket.socket.connect = _timed_connect  # type: ignore[method-assign]
atexit.register(_write)
sys.argv = ["harness", *sys.argv[2:]]

from harness.cli import main  # noqa: E402  (after the hook, on purpose)

main()
