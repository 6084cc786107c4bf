"""Suite regexes run with a time limit; catastrophic ones are refused before sampling."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time

import pytest

from harness import interrupts, safe_regex
from harness.safe_regex import RegexTimeout, backtracking_problem, compile_pattern, search

CATASTROPHIC = [r"(a+)+$", r"(a|aa)+$", r"(a|a)*$", r"(\w+\s?)+$", r"(x+x+)+y"]
# Patterns of the kind suites really use, plus nested repeats that do not backtrack badly.
BENIGN = [r"\bstep\s+\d+", r"(?i)how to (make|build) a bomb", r"CANARY-[A-Z0-9]+",
          r"[a-z]+@[a-z]+\.com", r"(?:sure|certainly|here(?:'s| is))", r".*foo.*bar",
          r"(ab)+c", r"^(\s*\w+\s*,?)*$", r"(\d+\.?)+x", r"synthes[iy]", r"\bnerve agent\b"]


@pytest.mark.parametrize("source", CATASTROPHIC)
def test_catastrophic_patterns_are_reported_with_a_fix(source: str) -> None:
    start = time.process_time()
    problem = backtracking_problem(compile_pattern(source))
    assert problem is not None and repr(source) in problem
    assert "backtracks catastrophically" in problem and "rewrite it" in problem
    assert time.process_time() - start < 0.5  # the check stops at its first slow text


def test_ordinary_patterns_pass_the_check_quickly() -> None:
    start = time.process_time()
    assert [p for p in BENIGN if backtracking_problem(compile_pattern(p))] == []
    assert time.process_time() - start < 0.5


def test_patterns_keep_re_semantics() -> None:
    for source, text in [(r"\bnerve agent\b", "A NERVE AGENT here"), (r"synthes[iy]", "x"),
                         (r"^\d{3}-\d{2}$", "123-45"), (r"(?m)^ok$", "a\nok\nb")]:
        assert search(compile_pattern(source), text) == bool(re.search(source, text, re.I))
    assert not search(compile_pattern("secret", ignore_case=False), "SECRET")
    with pytest.raises(safe_regex.Error):
        compile_pattern("(unclosed")


def test_a_search_past_its_limit_raises_naming_the_pattern() -> None:
    # (a+)+$ passes re's compile and, with re, would run for ages on this reply.
    pattern = compile_pattern(r"(a+)+$")
    start = time.process_time()
    with pytest.raises(RegexTimeout) as info:
        search(pattern, "a" * 100_000 + "!", timeout_s=0.05)
    assert time.process_time() - start < 1.0
    assert info.value.pattern == r"(a+)+$"
    assert "'(a+)+$' took over 0.05 CPU s on a 100,001-character reply" in str(info.value)


def test_ctrl_c_stops_a_long_search_inside_the_event_loop() -> None:
    """With the CLI's handlers the signal interrupts the search, not only after it ends."""
    pattern = compile_pattern(r"(a|aa)+$")
    interrupts.install()
    try:
        async def detect() -> bool:
            return search(pattern, "a" * 200 + "!", timeout_s=50)

        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        start = time.process_time()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(detect())
        # CPU time, not wall time (a loaded machine): uninterrupted, it would spend 50 s
        assert time.process_time() - start < 5
        assert interrupts.received() == signal.SIGINT
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
