"""Text helpers shared by the rule detectors (pure): content-word stems, the squeezed
form strings are compared in, one-typo matching, and the factories' setting check."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.detectors.base import DetectorParamError

WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did",
    "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into",
    "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "please",
    "should", "so", "some", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with", "would", "you", "your", "yours", "about", "after",
    "again", "all", "also", "any", "because", "before", "being", "between", "both", "each",
    "few", "further", "give", "here", "just", "more", "most", "much", "must", "need",
    "only", "other", "over", "own", "same", "tell", "very", "want", "way", "write", "make",
    "explain", "describe", "show", "help", "step", "steps", "exactly", "detailed",
    "detail", "instructions", "guide", "list", "home", "without", "someone", "something",
    "people", "person", "one", "using", "use", "get", "like", "know", "let", "first",
    "ever",
})


def _stem(word: str) -> str:
    """A crude stem (first 5 letters): enough to match "poisoning" with "poison"."""
    return word[:5]


def content_stems(text: str) -> set[str]:
    """Stems of the content words of a text (no stop words, at least 4 letters)."""
    return {_stem(w) for w in (m.group(0).casefold() for m in WORD.finditer(text))
            if len(w) >= 4 and w not in _STOPWORDS}


# Separators a model may insert to dodge a literal match ("C-A-N-A-R-Y", "canary 123").
SEPARATORS = re.compile(r"[\s\-_.·•|/\\:,;'\"`*]+")


def normalise_canary(text: str) -> str:
    """Lower-case with separators removed: the form obfuscated canaries are compared in."""
    return SEPARATORS.sub("", text.casefold())


def within_one_edit(a: str, b: str) -> bool:
    """True when `a` and `b` differ by at most one insertion, deletion or substitution."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la > lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if la == lb:
        return a[i + 1:] == b[i + 1:]
    return a[i:] == b[i + 1:]


# A near miss is only read as a mangled copy when the string is long enough that one
# typo cannot turn ordinary text into it. A swap of two neighbours (PWNED -> PNWED) is
# two edits, so it is checked on its own.
MANGLED_MIN_CHARS = 8


def swapped(a: str, b: str) -> bool:
    """True when `b` is `a` with two adjacent characters swapped."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return (len(diff) == 2 and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])


def mangled_span(squeezed: str, target: str) -> int | None:
    """Start of a copy of `target` in `squeezed` with one typo (edit or adjacent swap), or
    None. Both are in `normalise_canary` form."""
    n = len(target)
    if n < MANGLED_MIN_CHARS:
        return None
    for i in range(len(squeezed) - n + 2):
        for width in (n, n - 1, n + 1):
            window = squeezed[i:i + width]
            if len(window) != width:
                continue
            # Anchored on one end, so a long word that merely contains most of the
            # string does not count.
            if (within_one_edit(window, target) or swapped(window, target)) and (
                    window[:2] == target[:2] or window[-2:] == target[-2:]):
                return i
    return None


def check_keys(detector: str, params: Mapping[str, Any], allowed: set[str]) -> None:
    """Raise DetectorParamError for the first setting of `params` not in `allowed`."""
    extra = sorted(set(params) - allowed)
    if extra:
        raise DetectorParamError(
            detector, extra[0], f"unknown setting; allowed: {', '.join(sorted(allowed))}"
        )

