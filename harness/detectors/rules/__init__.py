"""Rule detectors: refusal (three-way), pattern (regex), canary (secret leak) and injection.

The scoring functions are pure (`analyse_refusal`, `pattern_matches`, `canary_hits`,
`injection_findings`); the detector classes only wrap them in the async `Detector`
protocol. One module per detector; the refusal phrases live in `_lexicon`, the text
helpers they share in `_text`.
"""

from __future__ import annotations

from harness.detectors.rules._text import (
    content_stems,
    mangled_span,
    normalise_canary,
    within_one_edit,
)
from harness.detectors.rules.canary import CanaryDetector, canary_hits, make_canary, secret_part
from harness.detectors.rules.injection import (
    InjectionDetector,
    InjectionFinding,
    injection_findings,
    make_injection,
)
from harness.detectors.rules.pattern import (
    PatternDetector,
    compile_patterns,
    make_pattern,
    pattern_matches,
)
from harness.detectors.rules.refusal import (
    RefusalAnalysis,
    RefusalDetector,
    RefusalMode,
    analyse_refusal,
    gibberish_reason,
    is_refusal,
    last_user_turn,
    make_refusal,
    refusal_score,
)

__all__ = [
    "CanaryDetector",
    "InjectionDetector",
    "InjectionFinding",
    "PatternDetector",
    "RefusalAnalysis",
    "RefusalDetector",
    "RefusalMode",
    "analyse_refusal",
    "canary_hits",
    "compile_patterns",
    "content_stems",
    "gibberish_reason",
    "injection_findings",
    "is_refusal",
    "last_user_turn",
    "make_canary",
    "make_injection",
    "make_pattern",
    "make_refusal",
    "mangled_span",
    "normalise_canary",
    "pattern_matches",
    "refusal_score",
    "secret_part",
    "within_one_edit",
]
