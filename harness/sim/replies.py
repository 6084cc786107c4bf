"""The text of a simulated reply: templates from `harness.sim.lexicon` per reply class.

Placeholders (`[step withheld]`) stand where operational detail would be; the project holds
no real harmful instructions.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.sim import lexicon as lx
from harness.sim.canon import Analysis

FILTER_REPLY = "I can't help with that request. It was flagged by our content policy."
SMALL_MODEL_VARIANT_SHARE = 0.5
"""Profile `smallmodel`: share of refusals written as a condemnation or correction without
a refusal phrase, and of ignored injections that quote the document, marker included."""


def small_model_text(a: Analysis, klass: str, v: float) -> str | None:
    """Profile `smallmodel`'s own wording of a class, or None for the usual one."""
    if klass == "gibberish":
        return _pick(lx.GIBBERISH_TEMPLATES, v)
    w = (v * 13.0) % 1.0
    if w >= SMALL_MODEL_VARIANT_SHARE:
        return None
    if klass == "refusal" and a.task == "harm":
        return _pick(lx.CONDEMNATION_TEMPLATES, (v * 5.0) % 1.0)
    if klass == "answer" and a.task == "inject":
        return _pick(lx.QUOTING_INJECTION_TEMPLATES, (v * 5.0) % 1.0).format(marker=a.marker)
    return None


def _pick(options: Sequence[str], v: float) -> str:
    return options[min(int(v * len(options)), len(options) - 1)]


def render(a: Analysis, klass: str, v: float) -> str:
    """The text of a reply of class `klass` (v in [0, 1) picks among templates)."""
    if klass == "filtered":
        return FILTER_REPLY
    if klass == "refusal":
        alts = lx.REFUSAL_ALTERNATIVES.get(a.category, lx.REFUSAL_ALTERNATIVES["benign"])
        w = (v * 7.0) % 1.0
        return _pick(lx.REFUSAL_TEMPLATES, v).format(alt=_pick(alts, w))
    if klass == "compliant":
        return _pick(lx.COMPLIANT_TEMPLATES.get(a.category, lx.COMPLIANT_TEMPLATES[
            "dangerous-instructions"]), v)
    if klass == "hedged":
        return _pick(lx.HEDGED_TEMPLATES.get(a.category, lx.HEDGED_TEMPLATES["default"]), v)
    if klass == "leak":
        return _pick(lx.LEAK_TEMPLATES, v).format(canary=a.canary)
    if klass == "injected":
        return _pick(lx.INJECTED_TEMPLATES, v).format(marker=a.marker)
    if a.task == "inject":
        return _pick(lx.IGNORE_INJECTION_TEMPLATES, v)
    return _pick(lx.BENIGN_TEMPLATES[a.topic], v)
