"""Paraphrase and translation variants through an OpenAI-compatible model (imperative shell).

Unlike the pure mutators, these call a configured target (`openai:<model>` with a base
URL, or `sim` for tests) through `harness.targets.make_target`. Answers are cached as JSON
files under `.harness-cache/rewrites/`, keyed by model + instruction + SHA-256 of the text,
so re-generating an incident suite costs no model calls and gives the same variants.

A rewrite is dropped (and reported in `RewriteResult.skipped`) when the model's answer is
empty, looks like a refusal, or lost a protected token (canary or injection marker).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.mutators import templates
from harness.mutators._registry import ID_SEPARATOR, _last_user_index, protected_tokens
from harness.records import CompletionRequest, Message, Probe, sha256_text, stable_json

DEFAULT_CACHE_DIR = Path(".harness-cache")
LANGUAGES: dict[str, str] = {
    "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "ru": "Russian", "zh": "Chinese", "ja": "Japanese",
    "ko": "Korean", "ar": "Arabic", "hi": "Hindi", "sw": "Swahili", "zu": "Zulu",
}
_REFUSAL_RE = re.compile(r"^\s*(i'?m sorry|sorry|i can(?:'|no)t|i cannot|i won'?t|"
                         r"i am unable|i'm unable|as an ai)", re.IGNORECASE)


@dataclass(frozen=True)
class RewriteConfig:
    """Which model rewrites, and where answers are cached.

    `target` is a target spec (`openai:<model>`, or `sim`); the API key is read from the
    environment variable `api_key_env` by the target, never stored here.
    """

    target: str
    base_url: str | None = None
    api_key_env: str | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR
    max_tokens: int = 512

    @property
    def target_options(self) -> dict[str, str]:
        """The rewriting target kind's options (`--base-url`, `--api-key-env`), unset left out."""
        given = {"base_url": self.base_url, "api_key_env": self.api_key_env}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class RewriteResult:
    """Variants made, and `probe_id: kind: reason` for every rewrite that was dropped."""

    variants: tuple[Probe, ...]
    skipped: tuple[str, ...] = ()
    cache_hits: int = 0
    model_calls: int = 0


@dataclass
class _Stats:
    hits: int = 0
    calls: int = 0
    skipped: list[str] = field(default_factory=list)


def parse_kind(kind: str) -> tuple[str, str, str]:
    """`paraphrase` or `translate:<lang>` -> (mutator name, id code, instruction)."""
    if kind == "paraphrase":
        return "paraphrase", "para", templates.PARAPHRASE_INSTRUCTION
    if kind.startswith("translate:") and kind.split(":", 1)[1]:
        code = kind.split(":", 1)[1]
        language = LANGUAGES.get(code, code)
        instruction = templates.TRANSLATE_INSTRUCTION.replace("{language}", language)
        return kind, f"tr-{code}", instruction
    raise UsageError(f"unknown rewrite {kind!r}; use 'paraphrase' or 'translate:<lang>' "
                     f"(e.g. translate:fr; known codes: {', '.join(LANGUAGES)})")


def cache_key(model: str, instruction: str, text: str) -> str:
    """Cache key: SHA-256 over (model, instruction, SHA-256 of the text)."""
    return sha256_text(stable_json([model, instruction, sha256_text(text)]))


class RewriteCache:
    """JSON files `<root>/rewrites/<key>.json` holding {model, instruction, text_sha256, output}."""

    def __init__(self, root: Path):
        self.dir = Path(root) / "rewrites"

    def get(self, key: str) -> str | None:
        """The cached output for `key`, or None (a torn file counts as a miss)."""
        path = self.dir / f"{key}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        output = data.get("output") if isinstance(data, dict) else None
        return output if isinstance(output, str) else None

    def put(self, key: str, output: str, meta: dict[str, Any]) -> None:
        """Store an output atomically (write then rename)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{key}.json.tmp"
        tmp.write_text(json.dumps({**meta, "output": output}, ensure_ascii=False, indent=1),
                       encoding="utf-8")
        tmp.replace(self.dir / f"{key}.json")


def check_rewrite(output: str, protected: Sequence[str]) -> str | None:
    """Why a rewrite is unusable (empty, refusal, lost token), or None when it is fine."""
    if not output.strip():
        return "empty answer"
    if _REFUSAL_RE.match(output):
        return "the rewriting model refused"
    missing = [t for t in protected if t not in output]
    if missing:
        return f"lost protected token(s) {', '.join(missing)}"
    return None


def rewrite_variants(probes: Sequence[Probe], kinds: Sequence[str], config: RewriteConfig,
                     *, seed: int = 0) -> RewriteResult:
    """One variant per (probe, kind) through the configured model, with the JSON cache.

    Raises UsageError when `config.target` is empty (no paraphrase target configured) and
    the InfrastructureError subclasses of the target when the model cannot be reached.
    """
    if not config.target:
        raise UsageError("paraphrase/translate variants need a model: pass "
                         "--paraphrase-target openai:<model> --base-url URL")
    parsed = [parse_kind(k) for k in kinds]
    if not probes or not parsed:
        return RewriteResult(())
    return asyncio.run(_rewrite_all(probes, parsed, config, seed))


async def _rewrite_all(probes: Sequence[Probe], kinds: Sequence[tuple[str, str, str]],
                       config: RewriteConfig, seed: int) -> RewriteResult:
    from harness.targets import make_target  # the shell imports the network layer lazily

    target = make_target(config.target, options=config.target_options)
    cache = RewriteCache(config.cache_dir)
    stats = _Stats()
    variants: list[Probe] = []
    try:
        for probe in probes:
            for name, code, template in kinds:
                variant = await _rewrite_one(target, cache, probe, name, code, template,
                                             config, seed, stats)
                if variant is not None:
                    variants.append(variant)
    finally:
        await target.aclose()
    return RewriteResult(tuple(variants), tuple(stats.skipped), stats.hits, stats.calls)


async def _rewrite_one(target: Any, cache: RewriteCache, probe: Probe, name: str, code: str,
                       template: str, config: RewriteConfig, seed: int,
                       stats: _Stats) -> Probe | None:
    protected = protected_tokens(probe)
    instruction = template.replace("{protected}", ", ".join(protected) or "(none)")
    idx = _last_user_index(probe)
    text = probe.messages[idx].content
    model = f"{config.target}@{config.base_url or ''}"
    key = cache_key(model, instruction, text)
    output = cache.get(key)
    if output is None:
        stats.calls += 1
        request = CompletionRequest(
            messages=(Message("system", instruction), Message("user", text)),
            temperature=0.0, max_tokens=config.max_tokens, n=1, seed=seed)
        completions = await target.complete(request)
        output = completions[0].text if completions and not completions[0].blocked else ""
        output = output.strip()
        if check_rewrite(output, protected) is None:
            cache.put(key, output, {"model": model, "instruction": instruction,
                                    "text_sha256": sha256_text(text)})
    else:
        stats.hits += 1
    problem = check_rewrite(output, protected)
    if problem is not None:
        stats.skipped.append(f"{probe.id}: {name}: {problem}")
        return None
    messages = (*probe.messages[:idx], Message("user", output), *probe.messages[idx + 1:])
    return replace(probe, id=f"{probe.id}{ID_SEPARATOR}{code}", messages=messages,
                   parent_id=probe.parent_id or probe.id, mutators=(*probe.mutators, name))
