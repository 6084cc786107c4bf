"""The pattern detector: harmful when any regex matches the output.

Patterns come from data files, so they run on `harness.safe_regex` (the `regex` module with
a time limit), never on `re`: see docs/detectors.md, "Regexes from suites run with a time
limit".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness import safe_regex
from harness.detectors.base import DetectionInput, DetectorParamError
from harness.detectors.rules._text import check_keys
from harness.records import DetectorResult, freeze


def compile_patterns(
    patterns: Any, ignore_case: bool = True, detector: str = "pattern"
) -> tuple[safe_regex.Pattern, ...]:
    """Compile a regex or list of regexes; a bad one raises DetectorParamError naming it.

    Patterns run on the `regex` module with a time limit (`harness.safe_regex`); one that
    backtracks catastrophically on a short adversarial text is refused here, so `validate`
    and `run` reject it before sampling.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)) or not patterns:
        raise DetectorParamError(
            detector, "patterns", "give a non-empty list of regular expressions"
        )
    out = []
    for i, p in enumerate(patterns):
        if not isinstance(p, str) or not p:
            raise DetectorParamError(detector, f"patterns[{i}]", f"{p!r} is not a non-empty string")
        try:
            compiled = safe_regex.compile_pattern(p, ignore_case)
        except safe_regex.Error as exc:
            raise DetectorParamError(
                detector, f"patterns[{i}]",
                f"invalid regular expression {p!r}: {exc}; fix it or escape special "
                "characters with a backslash",
            ) from exc
        if problem := safe_regex.backtracking_problem(compiled):
            raise DetectorParamError(detector, f"patterns[{i}]", problem)
        out.append(compiled)
    return tuple(out)


def pattern_matches(text: str, patterns: Sequence[safe_regex.Pattern],
                    timeout_s: float = safe_regex.DEFAULT_TIMEOUT_S) -> list[str]:
    """The source of every pattern that matches `text` (pure); each search is limited to
    `timeout_s` CPU seconds (`safe_regex.RegexTimeout` past it)."""
    return [p.pattern for p in patterns if safe_regex.search(p, text, timeout_s)]


class PatternDetector:
    """Harmful when any regex matches the output.

    A pattern that runs past `timeout_s` on a reply raises `RegexTimeout` naming the probe
    and the pattern: the sample's outcome is then "error" (never safe), and the run goes on.
    """

    def __init__(self, patterns: Sequence[safe_regex.Pattern],
                 timeout_s: float = safe_regex.DEFAULT_TIMEOUT_S):
        self.name = "pattern"
        self.patterns = tuple(patterns)
        self.timeout_s = timeout_s

    async def detect(self, item: DetectionInput) -> DetectorResult:
        """Label one output by regex matches."""
        try:
            return self.label(item.text)
        except safe_regex.RegexTimeout as exc:
            raise safe_regex.RegexTimeout(exc.pattern, exc.timeout_s, exc.text_chars,
                                          item.probe.id) from None

    def label(self, text: str) -> DetectorResult:
        """Synchronous labelling (pure)."""
        hits = pattern_matches(text, self.patterns, self.timeout_s)
        return DetectorResult(
            self.name, harmful=bool(hits), score=1.0 if hits else 0.0,
            detail=f"matched {len(hits)} of {len(self.patterns)} pattern(s)" if hits else "",
            extra=freeze({"matched": hits}) if hits else freeze({}),
        )


def make_pattern(params: Mapping[str, Any]) -> PatternDetector:
    """Factory for `pattern` (params: `patterns` regex list, `ignore_case` bool, default true,
    `timeout_s` CPU seconds one pattern may take on one reply, default 1)."""
    check_keys("pattern", params, {"patterns", "ignore_case", "timeout_s"})
    ignore_case = params.get("ignore_case", True)
    if not isinstance(ignore_case, bool):
        raise DetectorParamError("pattern", "ignore_case", f"{ignore_case!r} is not true/false")
    timeout_s = params.get("timeout_s", safe_regex.DEFAULT_TIMEOUT_S)
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
            or not 0 < timeout_s <= safe_regex.MAX_TIMEOUT_S):
        raise DetectorParamError(
            "pattern", "timeout_s",
            f"{timeout_s!r} is not a number of seconds in (0, {safe_regex.MAX_TIMEOUT_S:g}]")
    return PatternDetector(compile_patterns(params.get("patterns"), ignore_case),
                           float(timeout_s))
