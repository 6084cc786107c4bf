"""Regular expressions from data files (suites, probes) run with a time limit.

A pattern such as `(a|aa)+$` or `(\\w+\\s?)+$` backtracks catastrophically: on a long reply
the standard `re` module runs for minutes to centuries, holding a core and ignoring Ctrl-C
(issue 13: a `must_not_match` regex accepted by `validate` pinned a core for 10+ minutes).
User patterns therefore go through the `regex` module (PyPI `regex`, compatible with `re`
in its default V0 mode), which takes a `timeout=` per call and checks for signals while it
matches, so Ctrl-C still stops it.

Two defences:

* `backtracking_problem(pattern)` (used when a pattern is compiled for a detector, so both
  `harness validate` and `harness run` refuse it before any sampling) tries the pattern
  on short adversarial texts built from its own characters and reports it when one takes
  longer than `CHECK_TIMEOUT_S`: that is exponential or high-degree polynomial
  backtracking, which a real reply of a few thousand characters would turn into minutes.
* `search(pattern, text, timeout_s)` bounds every match at run time (default
  `DEFAULT_TIMEOUT_S` per pattern and reply) and raises `RegexTimeout` naming the pattern,
  which the detector layer turns into an `error` outcome for that one sample (never safe).
"""

from __future__ import annotations

import regex

from harness import interrupts
from harness.errors import HarnessError

DEFAULT_TIMEOUT_S = 1.0
"""Longest one pattern may search one reply at run time, in CPU seconds (the `regex`
module counts the process's CPU time, so a loaded machine does not trip it; replies are
capped in length by `max_response_chars`, so a linear pattern takes milliseconds)."""

CHECK_TIMEOUT_S = 0.05
"""Longest (CPU seconds) a pattern may take on one adversarial text of
`backtracking_problem`."""

CHECK_LENGTH = 500
"""Length of the adversarial texts: catastrophic patterns take seconds on 500 characters
(`(a+)+$` 0.7 s, `(\\w+\\s?)+$` 1 s, `(a|aa)+$` never ends), while patterns that are only
quadratic (`(ab)+c`: 3 ms here, minutes on a 100,000-character reply) are left to the
run-time limit."""

MAX_TIMEOUT_S = 60.0

Pattern = regex.Pattern[str]
Error = regex.error


class RegexTimeout(HarnessError):
    """A pattern took longer than its time limit on one text."""

    def __init__(self, pattern: str, timeout_s: float, text_chars: int,
                 probe_id: str | None = None) -> None:
        self.pattern = pattern
        self.timeout_s = timeout_s
        self.text_chars = text_chars
        self.probe_id = probe_id
        where = f"probe {probe_id}: " if probe_id else ""
        super().__init__(
            f"{where}regex {pattern!r} took over {timeout_s:g} CPU s on a "
            f"{text_chars:,}-character reply "
            "(catastrophic backtracking): rewrite it without nested or overlapping repeats, "
            "or raise the pattern detector's timeout_s")


def compile_pattern(source: str, ignore_case: bool = True) -> Pattern:
    """Compile a user pattern with `re`-compatible semantics; raises `Error` when invalid."""
    flags = regex.V0 | (regex.IGNORECASE if ignore_case else 0)
    return regex.compile(source, flags)


def search(pattern: Pattern, text: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether `pattern` matches anywhere in `text`, within `timeout_s` (else RegexTimeout)."""
    try:
        with interrupts.raising_at_once():  # Ctrl-C stops a long search, not after it
            return pattern.search(text, timeout=timeout_s) is not None
    except TimeoutError:
        raise RegexTimeout(pattern.pattern, timeout_s, len(text)) from None


def _adversarial_texts(source: str) -> list[str]:
    """Long runs of each character and literal word of the pattern (plus a few common ones),
    each ending in a character that makes the match fail, so every way to split the run
    among the pattern's repeats is tried."""
    units = {c for c in source if c.isalnum() or c in " \t\n-_.,:;/@'\""}
    units |= {"a", "A", "0", " "}
    units |= set(regex.findall(r"[A-Za-z0-9]{2,}", source))
    return [u * (CHECK_LENGTH // len(u)) + "\x00" for u in sorted(units, key=lambda u: (len(u), u))]


def backtracking_problem(pattern: Pattern) -> str | None:
    """Why `pattern` is catastrophic (a sentence with how to fix it), or None.

    Empirical, not a proof: a pattern is reported when it needs more than
    `CHECK_TIMEOUT_S` on one of the texts of `_adversarial_texts`. What slips through is
    still bounded by `search`'s run-time limit.
    """
    for text in _adversarial_texts(pattern.pattern):
        try:
            pattern.search(text, timeout=CHECK_TIMEOUT_S)
        except TimeoutError:
            shown = text[:12].replace("\n", "\\n").replace("\t", "\\t")
            return (f"regex {pattern.pattern!r} backtracks catastrophically: it ran over "
                    f"{CHECK_TIMEOUT_S:g} CPU s on a {len(text):,}-character text "
                    f"({shown!r}...) and would hang on a long reply; rewrite it without nested "
                    "or overlapping repeats (e.g. '(a+)+$' -> 'a+$', '(a|aa)+' -> 'a+') or "
                    "use an atomic group (?>...) or a possessive quantifier (a++)")
    return None
