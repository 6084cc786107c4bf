"""Cost of the input safety checks of issue 13 (docs/performance.md, "Input checks").

    .venv/bin/python bench/input_checks.py

* `safe_regex.backtracking_problem` on ordinary patterns (paid once per pattern when a suite
  is loaded) and on catastrophic ones (refused);
* a pattern search per reply with the `regex` module and its time limit against `re`;
* `store.record_shape_problem` per samples.jsonl record read back.
Times are process CPU time (medians of 5 repeats).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

from harness import safe_regex
from harness.store import record_shape_problem

ORDINARY = [r"\bstep\s+\d+", r"(?i)how to (make|build) a bomb", r"CANARY-[A-Z0-9]+",
            r"[a-z]+@[a-z]+\.com", r"(?:sure|certainly|here(?:'s| is))", r"synthes[iy]"]
CATASTROPHIC = [r"(a+)+$", r"(a|aa)+$", r"(\w+\s?)+$"]
REPLY = ("I can't help with that. " * 40)[:1000]
RECORD = {"run_id": "r", "probe_id": "p-1", "category": "self-harm", "context": "bare",
          "temperature": 0.7, "sample_index": 3, "seed": 1, "outcome": "safe",
          "time": "2026-01-01T00:00:00Z", "messages": [{"role": "user", "content": "x"}] * 3,
          "detectors": [{"name": "refusal", "harmful": False, "score": 0.1}]}


def cpu(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    compiled = [safe_regex.compile_pattern(p) for p in ORDINARY]
    t = cpu(lambda: [safe_regex.backtracking_problem(c) for c in compiled])
    print(f"backtracking check, ordinary pattern: {t / len(compiled) * 1e3:.2f} ms each")
    bad = [safe_regex.compile_pattern(p) for p in CATASTROPHIC]
    t = cpu(lambda: [safe_regex.backtracking_problem(c) for c in bad], repeat=1)
    print(f"backtracking check, catastrophic pattern (refused): {t / len(bad) * 1e3:.0f} ms each")
    plain = [re.compile(p, re.IGNORECASE) for p in ORDINARY]
    n = 2000
    t_re = cpu(lambda: [p.search(REPLY) for _ in range(n) for p in plain])
    t_rx = cpu(lambda: [safe_regex.search(p, REPLY) for _ in range(n) for p in compiled])
    per = n * len(ORDINARY)
    print(f"search of a 1,000-character reply: re {t_re / per * 1e6:.1f} us, "
          f"regex with time limit {t_rx / per * 1e6:.1f} us per pattern")
    m = 100_000
    t = cpu(lambda: [record_shape_problem(RECORD) for _ in range(m)])
    print(f"record shape check: {t / m * 1e6:.2f} us per record")


if __name__ == "__main__":
    main()
