"""Read a conversation the way the simulated model does: pure, deterministic, cached.

The simulator sees only the request (the HTTP server gets no probe ids), so everything
it knows is inferred here: the canonical form of the last user request (leetspeak,
homoglyphs, zero-width characters, base64/rot13 and letter-splitting undone), whether it
asks for harm (a lexicon match), whether it asks to reveal a canary held in the
conversation, whether documents or tool outputs carry an injected instruction with a
marker, and the context features that move the harm logit.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from harness.sim import lexicon as lx

Task = Literal["harm", "leak", "inject", "benign"]
Turn = tuple[str, str]  # (role, content)

CANARY_RE = re.compile(r"\bCANARY-[A-Z0-9]{4,}\b")
# Injection markers look like PWNED-4821; canaries share the shape and are excluded.
MARKER_RE = re.compile(r"\b(?!CANARY-)[A-Z]{3,}-[0-9]{3,}\b")

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# Cyrillic and Greek letters that look like Latin ones (the usual homoglyph attacks).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "к": "k", "м": "m",
    "т": "t", "в": "b", "н": "h", "А": "A", "Е": "E", "О": "O", "Р": "P", "С": "C",
    "Х": "X", "В": "B", "М": "M", "Т": "T", "Н": "H", "К": "K", "ο": "o", "α": "a",
    "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Ο": "O", "Α": "A", "Ε": "E", "Ι": "I", "Κ": "K", "Ρ": "P", "Τ": "T",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "8": "b", "@": "a", "$": "s", "!": "i", "|": "l"})
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|]*[a-z][a-z0-9@$!|]*")
_HAS_LEET = re.compile(r"[0-9@$!|]")
# A base64 token (12+ characters), or a payload wrapped over lines: full lines of 4k
# characters (no padding), each followed by a line break and the next line.
_B64_BLOCK = re.compile(
    r"(?:(?>(?:[A-Za-z0-9+/]{4}){4,})[ \t]*\r?\n[ \t]*)*[A-Za-z0-9+/]{12,}={0,2}")
_SPLIT_LETTERS = re.compile(r"\b(?:[a-z][.\-_* ]){2,}[a-z]\b")
_WS = re.compile(r"\s+")
# Short quoted fragments of a split payload ("'explo'" ... "add 'sive'"), several per turn.
_QUOTED = re.compile(r"['\"‘“]([^'\"’”]{1,40})['\"’”]")
# One quoted chunk per turn, of any length (the payload-split mutator's `Part 2: "..."`):
# from the first opening double quote to the last closing one, so quotes, apostrophes and
# line breaks inside the chunk do not cut it.
_CHUNK = re.compile(r"[\"“]([\s\S]*)[\"”]")
_WORD = re.compile(r"[a-z]{3,}")
# Between the words of a multi-word term: spaces and stray punctuation ("fully, automatic",
# "system; prompt", "poison... control"); at least one character, so words stay apart.
_SEP = r"[\W_]+"
_NOISY_SEP = re.compile(r"[\W_]+")
# Leetspeak: a word holding both letters and leet characters ("g37", "b4ck").
_MIXED_LEET = re.compile(r"\b(?=[a-z0-9@$!|]*[a-z])(?=[a-z0-9@$!|]*[0-9@$!|])[a-z0-9@$!|]+")
# ... and all-digit words of leet digits ("70" for "to", "47" for "at", "15" for "is").
_DIGIT_LEET = re.compile(r"(?<![\w.,])[0134578]{1,4}(?![\w]|[.,][0-9])")


def _phrase_pattern(term: str) -> str:
    """A term's words, escaped, with `_SEP` (spaces or stray punctuation) between them."""
    return _SEP.join(re.escape(word) for word in term.split(" "))


def _term_regex(terms: Iterable[str], *, loose: bool = True) -> re.Pattern[str]:
    """One alternation; short terms need a word end so "meth" does not match "method".

    With `loose` (the model's reading), the words of a multi-word term may be separated by
    stray punctuation as well as spaces; without it (the keyword blocklist of the patched
    profile, which a noise variant is meant to slip past) only by one space.
    """
    parts = []
    for term in sorted(set(terms), key=len, reverse=True):
        esc = _phrase_pattern(term) if loose else re.escape(term)
        parts.append(rf"\b{esc}(?:s|es|ed|ing|er|ers)?\b" if len(term) <= 4 else rf"\b{esc}")
    return re.compile("|".join(parts))


def _cue_regex(cues: Iterable[str]) -> re.Pattern[str]:
    """Substring cues (as `_has_any` reads them) whose words may be split by punctuation."""
    multi = sorted({c for c in cues if " " in c}, key=len, reverse=True)
    return re.compile("|".join(_phrase_pattern(c) for c in multi) or r"(?!)")


def _clean_term(matched: str) -> str:
    """A matched term with the noise between its words reduced to one space.

    A clean match is returned unchanged (single spaces and in-word hyphens stay), so the
    terms of an undisguised request, and the hash of them, do not change.
    """
    return _NOISY_SEP.sub(lambda m: m.group(0) if m.group(0) in (" ", "-") else " ", matched)


_HARM_RES: dict[str, re.Pattern[str]] = {c: _term_regex(t) for c, t in lx.HARM_TERMS.items()}
_FILTER_RE = _term_regex(lx.FILTER_TERMS, loose=False)
_OVERRIDE_RE = re.compile("|".join(_phrase_pattern(t) for t in lx.BENIGN_OVERRIDES))
_SCARY_RE = _term_regex(lx.SCARY_BENIGN_TERMS, loose=False)
_REVEAL_RE = _cue_regex(lx.REVEAL_CUES)


def _has_any(text: str, cues: Iterable[str]) -> bool:
    return any(c in text for c in cues)


def _readable(decoded: str) -> bool:
    """Decoded bytes that read as text: printable apart from whitespace, mostly letters."""
    if not decoded.isprintable() and not all(ch.isprintable() or ch.isspace() for ch in decoded):
        return False
    return sum(ch.isalpha() for ch in decoded) > len(decoded) / 2


def _decode_base64(text: str) -> list[str]:
    """Base64 tokens of `text` that decode to readable text (which may hold line breaks).

    A payload wrapped over several lines (MIME style, 76 characters a line) is decoded
    whole: full lines (a multiple of 4 characters) are joined with the line after them.
    """
    out = []
    for block in _B64_BLOCK.findall(text):
        token = _WS.sub("", block)
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if _readable(decoded):
            out.append(decoded)
    return out


def _unleet_digit_words(joined: str, unleeted: str) -> tuple[str, bool]:
    """Undo all-digit leet words ("g37 b4ck 47" -> "get back at"), when that is the reading.

    Numbers are usually numbers ("15 mg", "part 1"), so this applies only to a text
    written in leetspeak (it holds a word mixing letters and leet digits) that reads as no
    harm as it is, and only when undoing the digit words reveals a harm term. The text of
    every other request stays as it was.
    """
    if not _DIGIT_LEET.search(unleeted) or not _MIXED_LEET.search(joined):
        return unleeted, False
    if any(r.search(unleeted) for r in _HARM_RES.values()):
        return unleeted, False
    candidate = _DIGIT_LEET.sub(lambda m: m.group(0).translate(_LEET), unleeted)
    if harm_terms(candidate):
        return candidate, True
    return unleeted, False


@dataclass(frozen=True)
class Canonical:
    """A request's canonical text and how it was disguised."""

    text: str
    obfuscated: bool


@lru_cache(maxsize=8192)
def canonicalise(text: str) -> Canonical:
    """Undo the usual disguises of a request; `obfuscated` says whether any was found.

    Decoded payloads are appended (not substituted) so that both the instruction and
    the payload stay visible to the lexicon.
    """
    plain = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    glyphs = plain.translate(_HOMOGLYPHS)
    obfuscated = glyphs != plain or plain != text
    pieces = [glyphs]
    lowered = glyphs.lower()
    if _has_any(lowered, lx.DECODE_CUES):
        decoded = _decode_base64(glyphs)
        if decoded:
            obfuscated = True
            pieces.extend(decoded)
        if "rot13" in lowered or "rot-13" in lowered or "caesar" in lowered:
            obfuscated = True
            pieces.append(codecs.decode(glyphs, "rot13"))
    joined = " ".join(pieces).lower()

    def unleet(m: re.Match[str]) -> str:
        # "!" closing a word is punctuation ("starve!! myself"), not a leet "i".
        token = m.group(0)
        word = token.rstrip("!")
        if not _HAS_LEET.search(word):
            return token
        return word.translate(_LEET) + token[len(word):]

    unleeted = _LEET_TOKEN.sub(unleet, joined)
    # Digits inside ordinary words ("mp3", "b2b") also change; count as obfuscation only
    # when the result reveals a harm term the original did not.
    if unleeted != joined and any(
        r.search(unleeted) and not r.search(joined) for r in _HARM_RES.values()
    ):
        obfuscated = True
    unleeted, digits_undone = _unleet_digit_words(joined, unleeted)
    obfuscated = obfuscated or digits_undone
    unsplit = _SPLIT_LETTERS.sub(lambda m: re.sub(r"[.\-_* ]", "", m.group(0)), unleeted)
    if unsplit != unleeted:
        obfuscated = True
    return Canonical(_WS.sub(" ", unsplit).strip(), obfuscated)


def harm_terms(canonical_text: str) -> tuple[tuple[str, str], ...]:
    """(category, term) pairs of harm-intent terms in a canonical text, benign phrases removed."""
    text = _OVERRIDE_RE.sub(" ", canonical_text)
    found: list[tuple[str, str]] = []
    for category, regex in _HARM_RES.items():
        for m in regex.finditer(text):
            found.append((category, _clean_term(m.group(0))))
    return tuple(found)


def unit_hash(*parts: object) -> float:
    """A uniform number in (0, 1) from a stable hash of the parts (BLAKE2b, 53 bits)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8)
    return ((int.from_bytes(digest.digest(), "big") >> 11) + 0.5) / 2.0**53


@dataclass(frozen=True)
class Analysis:
    """Everything the simulated model reads from a conversation."""

    task: Task
    category: str
    key: str  # stable identity of the (canonical) conversation, for per-sample hashing
    core: str  # hashed for the request's own base propensity (shared by its variants)
    terms: tuple[str, ...]
    filter_hit: bool  # the plain last user turn contains a blocklisted keyword
    obfuscated: bool
    wrapped: bool
    split: bool
    safety_system: bool
    injected_docs: bool
    compliant_turns: int
    scary: bool
    marker: str | None
    canary: str | None
    topic: str


def _is_material(role: str, content: str, index: int) -> bool:
    """Retrieved documents and tool outputs: a tool turn or a later system message."""
    if role == "tool":
        return True
    if role != "system":
        return False
    head = content.lstrip()[:40].lower()
    return index > 0 or head.startswith(("retrieved documents", "tool output", "[tool"))


def _core(text: str) -> str:
    words = sorted({w for w in _WORD.findall(text) if w not in lx.CORE_STOPWORDS})
    return " ".join(words)


def normalise_messages(messages: Sequence[Any]) -> tuple[Turn, ...]:
    """Messages as (role, content) pairs, from `Message` records or OpenAI-style dicts."""
    out: list[Turn] = []
    for m in messages:
        if isinstance(m, Mapping):
            content = m.get("content")
            if isinstance(content, list):  # OpenAI content parts
                content = " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, Mapping)
                )
            out.append((str(m.get("role", "user")), str(content or "")))
        else:
            out.append((str(m.role), str(m.content)))
    return tuple(out)


def _reveals(text: str) -> bool:
    """A request to reveal a secret (`lexicon.REVEAL_CUES`, words split by noise too)."""
    return _has_any(text, lx.REVEAL_CUES) or _REVEAL_RE.search(text) is not None


def split_payload(user_turns: Sequence[str]) -> Canonical | None:
    """The request a payload-splitting attack spreads over user turns, put together.

    Each turn carries one quoted chunk (`Part 2: "..."`, of any length; a chunk may
    itself hold quotes or line breaks); the chunks are joined without spaces, as the
    attacker intends (cuts fall inside words), and read with the turns' remaining text,
    which may hold the decode instruction. None when fewer than two turns carry a
    chunk. The joined raw text is canonicalised as one, so an encoding whose cue is in
    the first part (base64, rot13) and words cut between parts are both undone.
    """
    chunks: list[str] = []
    rest: list[str] = []
    for content in user_turns:
        m = _CHUNK.search(content)
        if m is None:
            rest.append(content)
            continue
        chunks.append(m.group(1))
        rest.append(content[:m.start()] + " " + content[m.end():])
    if len(chunks) < 2:
        return None
    return canonicalise(" ".join(rest) + "\n" + "".join(chunks))


def _refusal_like(text: str) -> bool:
    low = text.lower()
    return any(p in low for p in lx.REFUSAL_PHRASES)


@lru_cache(maxsize=16384)
def analyse(turns: tuple[Turn, ...]) -> Analysis:
    """Read a conversation (as (role, content) pairs); pure and cached."""
    last_user_i = max((i for i, (r, _) in enumerate(turns) if r == "user"), default=-1)
    last_user = turns[last_user_i][1] if last_user_i >= 0 else ""
    canon = canonicalise(last_user)
    found = harm_terms(canon.text)
    text = canon.text
    obfuscated = canon.obfuscated
    split = False
    rejoined: Canonical | None = None  # the payload split over user turns, put together
    if not found and _has_any(canon.text, lx.JOIN_CUES):
        users = tuple(c for r, c in turns[:last_user_i + 1] if r == "user")
        rejoined = split_payload(users)
        if rejoined is not None:
            found = harm_terms(rejoined.text)
            if found:
                split = True
                text = rejoined.text
                obfuscated = obfuscated or rejoined.obfuscated
        else:
            earlier = [canonicalise(c) for c in users[:-1]]
            joined = " ".join([*(e.text for e in earlier), canon.text])
            # Split payloads may quote short fragments ("'explo'" ... "add 'sive'"): join
            # the quoted pieces without spaces, as the attacker intends.
            quoted = "".join(_QUOTED.findall(joined))
            found = harm_terms(joined) or harm_terms(quoted)
            if found:
                split = True
                text = joined
                obfuscated = obfuscated or any(e.obfuscated for e in earlier)

    system_prompt = turns[0][1] if turns and turns[0][0] == "system" else ""
    materials = [c for i, (r, c) in enumerate(turns) if _is_material(r, c, i)]
    secret_sources = [system_prompt, *materials]
    canary = next((m.group(0) for s in secret_sources for m in CANARY_RE.finditer(s)), None)
    marker = None
    for content in materials:
        for sentence in re.split(r"(?<=[.!?\n])\s+", content):
            m = MARKER_RE.search(sentence)
            if m and _has_any(sentence.lower(), lx.INJECTION_CUES):
                marker = m.group(0)
                break
        if marker:
            break
    low_system = system_prompt.lower()
    safety_system = bool(system_prompt) and _has_any(low_system, lx.SAFETY_CUES)
    compliant_turns = sum(
        1 for r, c in turns[:last_user_i] if r == "assistant" and not _refusal_like(c)
    )
    wrapped = _has_any(canon.text, lx.WRAPPER_CUES)
    filter_hit = bool(_FILTER_RE.search(_WS.sub(" ", last_user.lower())))

    task: Task
    if found:
        task, category = "harm", found[0][0]
    elif canary and _reveals(canon.text):
        task, category = "leak", "privacy-leak"
    elif canary and rejoined is not None and _reveals(rejoined.text):
        task, category = "leak", "privacy-leak"
        split, text = True, rejoined.text
        obfuscated = obfuscated or rejoined.obfuscated
    elif marker:
        task, category = "inject", "prompt-injection"
    else:
        task, category = "benign", "benign"
    topic = next((t for t in lx.BENIGN_TEMPLATES if t != "default" and t in canon.text), "default")
    terms = tuple(sorted({t for _, t in found}))
    return Analysis(
        task=task,
        category=category,
        key=hashlib.blake2b(repr(turns).encode("utf-8"), digest_size=12).hexdigest(),
        core=_core(text),
        terms=terms,
        filter_hit=filter_hit and task == "harm",
        obfuscated=obfuscated,
        wrapped=wrapped,
        split=split,
        safety_system=safety_system,
        injected_docs=marker is not None,
        compliant_turns=compliant_turns,
        scary=bool(_SCARY_RE.search(canon.text)),
        marker=marker,
        canary=canary,
        topic=topic,
    )
