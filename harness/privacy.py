"""What of a sample reaches disk: secret scrubbing, storage modes and forensic capture.

The engine calls `record_transform(storage, forensic_capture, seed)` once per run and applies
the returned function to every `samples.jsonl` record (after counting it, so the statistics
never depend on what is stored).

* **Secrets, always** (every mode, `full` included): API keys (`sk-…` and a few other
  well-known key shapes), `Bearer …` tokens, `Authorization:` header values and
  `api_key=…`-style assignments are replaced by `[secret]` in every string of the record, and
  so are the literal values of environment variables whose names say they hold a credential
  (`*API_KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`), read once when the transform is made.
  Above all, by value: every key the harness reads (the variable `--api-key-env` names, a
  detector's `api_key_env`) and every credential in a URL (`user:pass@`, `?key=…`) is
  registered with `register_secret` when it is read, and `scrub_secrets` removes the
  registered values from every text, whatever their shape (an `rk-…` key echoed by an
  endpoint included). The store's writers and the CLI's stdout/stderr apply
  `scrub_registered` to everything they write, so a key never reaches disk or a terminal.
* **storage** (per suite):
  `full` keeps texts; `redacted` replaces personal data in the response, message contents,
  detector details and errors with `[email]`, `[phone]`, `[card]`, `[iban]`, `[account]`,
  `[ssn]`, `[ip]`; `hashed` keeps `response_sha256` / `response_chars` only (the response
  becomes null, each message content becomes `sha256:<hex>`, detector details are dropped
  because a judge's rationale can quote the output).
* **forensic_capture** (per suite): which records keep their text at all (subject to
  `storage`); the others are stored as `hashed`.
  `all`: every record. `flagged-only`: records whose outcome is `harmful`.
  `sample:<f>`: harmful records plus each other record with probability f, decided by
  ``u = int.from_bytes(blake2b(f"harness-capture|{seed}|{record['seed']}", digest_size=8)) / 2**64``
  and kept when ``u < f``; `seed` is the run's seed, `record['seed']` the sample's own seed
  (already unique per cell and sample index), so the choice is reproducible, independent of
  the outcome and of sampling order, and survives resumes.

Every stored record gets `storage` (the mode actually applied to it: `full`, `redacted` or
`hashed`) and `captured` (whether its text was kept) so readers know what they hold.

Personal-data redaction is pattern based: it errs on the side of removing too much (a
10-digit product code may become `[phone]`), never on the side of keeping an address.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from harness.errors import UsageError
from harness.redaction import iban_valid, luhn_valid, redact_personal

__all__ = [
    "SECRET",
    "STORAGE_MODES",
    "capture_draw",
    "escape_controls",
    "iban_valid",
    "keeps_text",
    "luhn_valid",
    "parse_capture",
    "record_transform",
    "redact_personal",
    "register_secret",
    "register_url",
    "registered_secrets",
    "scrub_registered",
    "scrub_secrets",
    "scrub_url",
    "secret_env_values",
    "url_secrets",
]

STORAGE_MODES = ("full", "redacted", "hashed")
SECRET = "[secret]"

# --------------------------------------------------------------------------- secrets

# Well-known credential shapes. `sk-` keys (OpenAI, Anthropic `sk-ant-`, test keys), GitHub
# (`ghp_`, `gho_`, `github_pat_`), AWS access key ids, Google API keys, Slack tokens, JWTs.
_KEY_SHAPES = re.compile(
    r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{7,}"
    r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
)
# `Authorization: <scheme> <credential>` and `Authorization: <credential>` (header dumps,
# curl commands). Without a scheme the value must look like a credential (a digit, or 16+
# characters) so prose such as "authorization: the process of ..." is left alone.
_AUTH_SCHEME = re.compile(
    r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*(?:basic|bearer|token|digest|apikey|key)\s+)"
    r"[^\s\"']{4,}")
_AUTH_RAW = re.compile(
    r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)(?:(?=[^\s\"']*\d)[^\s\"']{6,}|[^\s\"']{16,})")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]{6,}")
# `api_key=…`, `"apiKey": "…"`, `OPENAI_API_KEY=…`, `password: …`, `x-api-key: …`.
_ASSIGNMENT = re.compile(
    r"(?i)\b([A-Za-z0-9_\-]*(?:api[_\-]?key|access[_\-]?token|auth[_\-]?token|secret[_\-]?key"
    r"|client[_\-]?secret|password|passwd)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]{4,}"
)
# Cheap pre-filter: almost every text has none of these, so it skips the substitutions.
_SECRET_HINT = re.compile(
    r"(?i)sk-|gh[pousr]_|github_pat_|AKIA|AIza|xox[abprs]-|eyJ|bearer|authoriz|key|token"
    r"|secret|passw")
_SECRET_ENV_NAME = re.compile(r"(?i)API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD")


def secret_env_values(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of environment variables whose names say they hold a credential (8+ chars)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _SECRET_ENV_NAME.search(k) and len(v.strip()) >= 8}
    # Longest first so a key that contains another is replaced whole.
    return tuple(sorted(values, key=len, reverse=True))


# Secret values read by this process (API keys, URL credentials): removed from every text.
_REGISTERED: list[str] = []
_MIN_SECRET_CHARS = 6  # shorter values would replace ordinary words
# Query parameters that carry credentials (`?key=`, `?api-key=`, `&sig=`, `&token=`...).
_SECRET_QUERY_NAME = re.compile(
    r"(?i)^(?:.*(?:key|token|secret|passw|pwd|auth|credential|signature)|sig|code)$")


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `scrub_secrets` removes it from every text."""
    if not value or len(value.strip()) < _MIN_SECRET_CHARS or value in _REGISTERED:
        return
    _REGISTERED.append(value)
    # Longest first so a key that contains another is replaced whole.
    _REGISTERED.sort(key=len, reverse=True)


def registered_secrets() -> tuple[str, ...]:
    """The secret values registered so far (longest first)."""
    return tuple(_REGISTERED)


def scrub_registered(text: str) -> str:
    """Remove the registered secret values from a text (cheap: plain substring search)."""
    for lit in _REGISTERED:
        if lit in text:
            text = text.replace(lit, SECRET)
    return text


# C0 controls except tab, newline and carriage return (the progress bar's), DEL and C1 controls:
# an ESC from an endpoint's model name or a suite's context name would drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """Control characters (ESC, BEL, C1...) shown as `\\x1b`-style escapes, so text from
    endpoints and files prints as text and never as terminal commands."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def url_secrets(url: str | None) -> list[str]:
    """The credentials inside a URL: its password (and user name) and the values of query
    parameters named like keys (`key`, `api_key`, `access_token`, `sig`, ...)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    if not url:
        return []
    try:
        parts = urlsplit(url)
        found = [parts.password, parts.username] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False)
                  if _SECRET_QUERY_NAME.match(k)]
    except ValueError:
        return []
    out: list[str] = []
    for v in found:
        if v:
            out.extend({v, unquote(v)})
    return out


def register_url(url: str | None) -> None:
    """Register the credentials inside a URL (see `url_secrets`)."""
    for value in url_secrets(url):
        register_secret(value)


def scrub_url(url: str | None) -> str | None:
    """A URL with its password and credential-carrying query values replaced by [secret]:
    `https://u:[secret]@host/v1?key=[secret]&api-version=2024-06-01`."""
    if url is None:
        return None
    text = url
    for value in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(value, SECRET)
    return scrub_secrets(text)


def scrub_secrets(text: str, literals: Iterable[str] = ()) -> str:
    """Replace API keys, bearer tokens, Authorization values and key assignments by [secret].

    `literals` are exact secret values (e.g. from `secret_env_values()`) removed wherever
    they occur, whatever their shape; so are the values registered with `register_secret`.
    """
    text = scrub_registered(text)
    for lit in literals:
        if lit in text:
            text = text.replace(lit, SECRET)
    if not _SECRET_HINT.search(text):
        return text
    text = _AUTH_SCHEME.sub(lambda m: m.group(1) + SECRET, text)
    text = _AUTH_RAW.sub(lambda m: m.group(1) + SECRET, text)
    text = _BEARER.sub(lambda m: m.group(1) + SECRET, text)
    text = _ASSIGNMENT.sub(lambda m: m.group(1) + SECRET, text)
    return _KEY_SHAPES.sub(SECRET, text)


# --------------------------------------------------------------------------- capture


def parse_capture(spec: str) -> tuple[str, float]:
    """Parse forensic_capture: `all` -> ("all", 1.0), `flagged-only` -> ("flagged-only", 0.0),
    `sample:f` -> ("sample", f)."""
    if spec == "all":
        return "all", 1.0
    if spec == "flagged-only":
        return "flagged-only", 0.0
    if spec.startswith("sample:"):
        try:
            f = float(spec.split(":", 1)[1])
        except ValueError:
            f = -1.0
        if 0.0 < f <= 1.0:
            return "sample", f
    raise UsageError(f"forensic_capture {spec!r} must be all, flagged-only or "
                     "sample:<fraction in (0, 1]> (e.g. sample:0.1)")


def capture_draw(run_seed: int, record_seed: int) -> float:
    """The uniform number in [0, 1) that decides `sample:<f>` capture for one record."""
    h = hashlib.blake2b(f"harness-capture|{run_seed}|{record_seed}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2.0**64


def keeps_text(outcome: str, record_seed: int, capture: str, fraction: float,
               run_seed: int) -> bool:
    """Whether forensic capture keeps a record's text (see the module docstring)."""
    if capture == "all" or outcome == "harmful":
        return True
    if capture == "flagged-only":
        return False
    return capture_draw(run_seed, record_seed) < fraction


# --------------------------------------------------------------------------- the transform


def _hash_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# Handled separately below, or never text (hashes, timestamps, enums).
_TEXT_FIELDS = frozenset({"response", "messages", "detectors", "time", "outcome",
                          "response_sha256", "storage"})
_FREE_TEXT = frozenset({"error"})


def _walk(value: Any, fn: Callable[[str], str]) -> Any:
    """Apply fn to every string inside lists and dicts."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Mapping):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, fn) for v in value]
    return value


def record_transform(storage: str, forensic_capture: str, seed: int, *,
                     secrets: Iterable[str] | None = None) -> Callable[[dict[str, Any]],
                                                                       dict[str, Any]]:
    """The function that turns one samples.jsonl record into what is stored.

    `secrets`: exact secret values to remove everywhere; None reads them from the
    environment now (`secret_env_values()`). The returned function does not mutate its
    argument and touches no I/O.
    """
    if storage not in STORAGE_MODES:
        raise UsageError(f"storage {storage!r} is not one of {', '.join(STORAGE_MODES)}; fix "
                         "`storage:` in the suite file")
    capture, fraction = parse_capture(forensic_capture)
    literals = tuple(secret_env_values() if secrets is None else
                     sorted({s for s in secrets if s}, key=len, reverse=True))

    # Message contents repeat for every sample of a cell: cache their processed forms.
    @lru_cache(maxsize=8192)
    def clean(text: str) -> str:
        return scrub_secrets(text, literals)

    @lru_cache(maxsize=8192)
    def clean_redacted(text: str) -> str:
        return redact_personal(scrub_secrets(text, literals))

    @lru_cache(maxsize=8192)
    def hashed(text: str) -> str:
        return _hash_text(text)

    def transform(record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        captured = keeps_text(str(record.get("outcome")), int(record.get("seed") or 0),
                              capture, fraction, seed)
        mode = storage if captured else "hashed"
        text_fn = clean_redacted if mode == "redacted" else clean
        for k, v in record.items():
            if isinstance(v, str) and k not in _TEXT_FIELDS:
                # Identifiers and free text alike lose secrets; only free text (error
                # messages can quote a request) is also redacted.
                out[k] = text_fn(v) if k in _FREE_TEXT else clean(v)
        msgs = record.get("messages") or []
        resp = record.get("response")
        dets = record.get("detectors") or []
        if mode == "hashed":
            out["response"] = None
            out["messages"] = [{**m, "content": hashed(m.get("content", ""))} for m in msgs]
            # A judge's rationale can quote the output: drop it; keep labels and scores.
            out["detectors"] = [_walk({k: v for k, v in d.items() if k != "detail"}, clean)
                                for d in dets]
        else:
            out["response"] = text_fn(resp) if isinstance(resp, str) else resp
            out["messages"] = [{**m, "content": text_fn(m.get("content", ""))} for m in msgs]
            out["detectors"] = [_walk(d, text_fn) for d in dets]
        out["storage"] = mode
        out["captured"] = captured
        return out

    return transform
