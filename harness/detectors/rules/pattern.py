"""The pattern detector: harmful when any regex matches the output."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.detectors.base import DetectionInput, DetectorParamError
from harness.detectors.rules._text import check_keys
from harness.records import DetectorResult, freeze


def compile_patterns(
    patterns: Any, ignore_case: bool = True, detector: str = "pattern"
) -> tuple[re.Pattern[str], ...]:
    """Compile a regex or list of regexes; a bad one raises DetectorParamError naming it."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)) or not patterns:
        raise DetectorParamError(
            detector, "patterns", "give a non-empty list of regular expressions"
        )
    flags = re.IGNORECASE if ignore_case else 0
    out = []
    for i, p in enumerate(patterns):
        if not isinstance(p, str) or not p:
            raise DetectorParamError(detector, f"patterns[{i}]", f"{p!r} is not a non-empty string")
        try:
            out.append(re.compile(p, flags))
        except re.error as exc:
            raise DetectorParamError(
                detector, f"patterns[{i}]",
                f"invalid regular expression {p!r}: {exc}; fix it or escape special "
                "characters with a backslash",
            ) from exc
    return tuple(out)


def pattern_matches(text: str, patterns: Sequence[re.Pattern[str]]) -> list[str]:
    """The source of every pattern that matches `text` (pure)."""
    return [p.pattern for p in patterns if p.search(text)]


class PatternDetector:
    """Harmful when any regex matches the output."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]):
        self.name = "pattern"
        self.patterns = tuple(patterns)

    async def detect(self, item: DetectionInput) -> DetectorResult:
        """Label one output by regex matches."""
        return self.label(item.text)

    def label(self, text: str) -> DetectorResult:
        """Synchronous labelling (pure)."""
        hits = pattern_matches(text, self.patterns)
        return DetectorResult(
            self.name, harmful=bool(hits), score=1.0 if hits else 0.0,
            detail=f"matched {len(hits)} of {len(self.patterns)} pattern(s)" if hits else "",
            extra=freeze({"matched": hits}) if hits else freeze({}),
        )


def make_pattern(params: Mapping[str, Any]) -> PatternDetector:
    """Factory for `pattern` (params: `patterns` regex list, `ignore_case` bool, default true)."""
    check_keys("pattern", params, {"patterns", "ignore_case"})
    ignore_case = params.get("ignore_case", True)
    if not isinstance(ignore_case, bool):
        raise DetectorParamError("pattern", "ignore_case", f"{ignore_case!r} is not true/false")
    return PatternDetector(compile_patterns(params.get("patterns"), ignore_case))


