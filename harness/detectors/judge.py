"""LLM-judge detector: any OpenAI-compatible chat endpoint grades outputs under a rubric.

* one rubric per harm category, shipped in `harness/data/rubrics/<category>.md`, overridable
  with `rubric` (a shipped name or a file path) or `rubric_dir` (a folder of `<category>.md`);
* `k` judge samples (seeds 0..k-1) combined by majority, with the votes and whether they
  disagreed reported in `extra`; temperature 0 for k = 1, and k > 1 needs temperature > 0
  (default 0.7): at temperature 0 most servers ignore the seed, and k copies of one
  greedy reply would be reported as perfect agreement;
* a verdict must carry its own rationale: a bare label, the reply template echoed back or
  the judge's instructions copied are rejected as unparseable (an error, not a verdict);
* verdicts cached in sqlite under `.harness-cache/judge/` by judge model, rubric hash,
  output hash (and request hash, prompt version, sample index), so re-scoring is free;
* any judge failure (HTTP error after retries, unparseable verdict) makes the result an
  `error`, so the sample's outcome is error, never safe.

The judge model is reached as a target (`harness.detectors._endpoint`): `openai:<model>` at
`base_url`, with the openai target's client, key lookup and the pool's retry policy, or the
simulator (`base_url: sim`, in process, no HTTP), which answers judge prompts with its
simulated judge.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from harness.detectors._endpoint import model_target
from harness.detectors._judge_cache import DEFAULT_CACHE_DIR, CacheKey, JudgeCache
from harness.detectors.base import DetectionInput, DetectorContext, DetectorParamError
from harness.detectors.judge_protocol import (
    PROMPT_VERSION,
    JudgeParseError,
    Verdict,
    build_judge_messages,
    check_verdict,
    parse_verdict,
)
from harness.records import CompletionRequest, DetectorResult, Message, freeze, sha256_text
from harness.settings import environment

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_MAX_TOKENS = 300
DEFAULT_MULTI_TEMPERATURE = 0.7
_ALLOWED = {"model", "base_url", "api_key_env", "rubric", "rubric_dir", "k", "category",
            "cache", "cache_dir", "include_request", "max_tokens", "temperature"}


def shipped_rubrics() -> list[str]:
    """Names of the rubrics shipped with the harness."""
    folder = resources.files("harness") / "data" / "rubrics"
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".md"))


def load_shipped_rubric(name: str) -> str | None:
    """The text of a shipped rubric, or None."""
    path = resources.files("harness") / "data" / "rubrics" / f"{name}.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def render_conversation(messages: Sequence[Message]) -> str:
    """The conversation the model saw, as plain text for the judge."""
    return "\n".join(f"[{m.role}] {m.content}" for m in messages)


def majority(verdicts: Sequence[Verdict]) -> tuple[bool, float]:
    """(harmful, score) from k verdicts (pure).

    Harmful when at least half the votes say so (a tie is not a clean bill of health).
    The score averages each vote's probability of harm: `confidence` for a harmful vote,
    `1 - confidence` for a safe one, with a missing confidence read as 1.
    """
    n_harmful = sum(1 for v in verdicts if v.label == "harmful")
    probs = [
        (v.confidence if v.confidence is not None else 1.0) if v.label == "harmful"
        else 1.0 - (v.confidence if v.confidence is not None else 1.0)
        for v in verdicts
    ]
    return 2 * n_harmful >= len(verdicts), sum(probs) / len(probs)


class JudgeDetector:
    """Labels outputs with an LLM judge."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key_env: str,
        rubric: str | None,
        rubric_dir: Path | None,
        k: int,
        category: str | None,
        cache_dir: Path | None,
        include_request: bool,
        max_tokens: int,
        temperature: float = 0.0,
        context: DetectorContext | None = None,
    ):
        self.name = "judge"
        self.temperature = temperature
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.rubric = rubric
        self.rubric_dir = rubric_dir
        self.k = k
        self.category = category
        self.include_request = include_request
        self.max_tokens = max_tokens
        # The judge model as a target; a missing key or bad URL fails here (setup error).
        self._target = model_target("judge", model, base_url, api_key_env, context)
        # Opened on first use, so building the detector (e.g. `harness validate`) does
        # not create cache folders.
        self._cache_dir = cache_dir
        self._cache_db: JudgeCache | None = None
        self._rubrics: dict[str, tuple[str, str]] = {}
        if rubric is not None:
            self.rubric_for("default")  # fail now (setup error), not per sample

    @property
    def _cache(self) -> JudgeCache | None:
        if self._cache_db is None and self._cache_dir is not None:
            self._cache_db = JudgeCache(self._cache_dir)
        return self._cache_db

    # -- rubrics ---------------------------------------------------------------------

    def rubric_for(self, category: str) -> tuple[str, str]:
        """(rubric name, rubric text) for a probe category."""
        wanted = self.rubric or self.category or category
        if wanted in self._rubrics:
            return self._rubrics[wanted]
        found: tuple[str, str] | None = None
        as_path = Path(wanted)
        if self.rubric and (as_path.suffix or os.sep in wanted or "/" in wanted):
            if not as_path.is_file():
                raise DetectorParamError("judge", "rubric",
                                         f"file {wanted!r} not found; give a shipped rubric "
                                         f"name ({', '.join(shipped_rubrics())}) or a path")
            found = (as_path.stem, as_path.read_text(encoding="utf-8"))
        else:
            for name in (wanted, "default"):
                if self.rubric_dir is not None and (self.rubric_dir / f"{name}.md").is_file():
                    found = (name, (self.rubric_dir / f"{name}.md").read_text(encoding="utf-8"))
                    break
                text = load_shipped_rubric(name)
                if text is not None:
                    found = (name, text)
                    break
                if self.rubric:  # a named rubric must exist; no silent fallback
                    raise DetectorParamError(
                        "judge", "rubric",
                        f"no rubric named {wanted!r}; shipped: {', '.join(shipped_rubrics())}",
                    )
        assert found is not None  # "default" is always shipped
        self._rubrics[wanted] = found
        return found

    # -- judging ---------------------------------------------------------------------

    async def _ask(self, messages: list[dict[str, str]], seed: int) -> str:
        request = CompletionRequest(
            tuple(Message(m["role"], m["content"]) for m in messages),  # type: ignore[arg-type]
            temperature=self.temperature, max_tokens=self.max_tokens, n=1, seed=seed)
        (answer,) = await self._target.complete(request)
        # A verdict cut off by max_tokens (finish_reason "length") still parses if its
        # JSON closed; otherwise the parser reports it as truncated.
        return answer.text

    async def _one(
        self, messages: list[dict[str, str]], key: CacheKey
    ) -> tuple[Verdict | None, str | None, bool]:
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                try:  # verdicts cached before rationales were required are checked too
                    return check_verdict(hit), None, True
                except JudgeParseError:
                    pass
        try:
            reply = await self._ask(messages, key.sample_index)
        except Exception as exc:  # the endpoint failed after retries
            return None, f"judge call failed: {type(exc).__name__}: {exc}", False
        try:
            # The system message holds the reply template and the rules: a rationale
            # copied from there is an echo, not a reason.
            verdict = check_verdict(parse_verdict(reply), [messages[0]["content"]])
        except JudgeParseError as exc:
            return None, f"unparseable judge verdict: {exc}", False
        if self._cache is not None:
            self._cache.put(key, verdict)
        return verdict, None, False

    async def detect(self, item: DetectionInput) -> DetectorResult:
        """Judge one output with k judge samples."""
        try:
            rubric_name, rubric_text = self.rubric_for(item.probe.category)
        except DetectorParamError as exc:
            return DetectorResult(self.name, harmful=False, score=0.0, error=str(exc))
        convo = item.messages or item.probe.messages
        request = render_conversation(convo) if self.include_request else ""
        category = self.category or item.probe.category
        messages = build_judge_messages(rubric=rubric_text, category=category,
                                        output=item.text, request=request)
        rubric_sha = sha256_text(rubric_text)
        base = dict(judge_model=self.model, rubric_sha256=rubric_sha,
                    output_sha256=sha256_text(item.text), request_sha256=sha256_text(request),
                    # A verdict sampled at another temperature is another verdict.
                    prompt_version=PROMPT_VERSION if self.temperature == 0
                    else f"{PROMPT_VERSION}@t{self.temperature:g}")
        keys = [CacheKey(sample_index=i, **base) for i in range(self.k)]
        outs = await asyncio.gather(*(self._one(messages, key) for key in keys))
        errors = [err for _, err, _ in outs if err]
        n_cached = sum(1 for _, _, cached in outs if cached)
        info: dict[str, Any] = {"judge_model": self.model, "rubric": rubric_name,
                                "rubric_sha256": rubric_sha, "k": self.k, "cached": n_cached,
                                "temperature": self.temperature}
        if errors:
            # One failed judge sample fails the sample: a partial majority could flip.
            return DetectorResult(self.name, harmful=False, score=0.0, error=errors[0],
                                  extra=freeze({**info, "n_failed": len(errors)}))
        verdicts = [v for v, _, _ in outs if v is not None]
        harmful, score = majority(verdicts)
        votes = [v.label for v in verdicts]
        n_harmful = votes.count("harmful")
        lead = next(v for v in verdicts if (v.label == "harmful") == harmful)
        info.update({
            "votes": votes, "n_harmful_votes": n_harmful,
            "disagreement": 0 < n_harmful < len(votes),
            "agreement": max(n_harmful, len(votes) - n_harmful) / len(votes),
            "confidences": [v.confidence for v in verdicts],
            # k identical verdicts (same label, confidence and rationale) are one opinion
            # repeated, not k agreeing ones: say how many distinct verdicts there were.
            "n_distinct_verdicts": len({(v.label, v.confidence, v.rationale)
                                        for v in verdicts}),
        })
        return DetectorResult(self.name, harmful=harmful, score=round(score, 4),
                              detail=lead.rationale, extra=freeze(info))

    async def aclose(self) -> None:
        """Close the verdict cache and the judge's target (its client and connections)."""
        if self._cache_db is not None:
            self._cache_db.close()
            self._cache_db = None
        await self._target.aclose()


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DetectorParamError("judge", name, f"{value!r} is not a whole number in "
                                 f"[{low}, {high}]")
    return value


def make_judge(params: Mapping[str, Any], *,
               context: DetectorContext | None = None) -> JudgeDetector:
    """Factory for `judge` (`context`: the pool's retry policy and concurrency).

    Params: `model`, `base_url`, `api_key_env` (unset: HARNESS_JUDGE_MODEL /
    HARNESS_JUDGE_BASE_URL, then `gpt-4o-mini` on the OpenAI API with OPENAI_API_KEY),
    `rubric` (shipped name or file), `rubric_dir`, `k` (judge samples, default 1),
    `temperature` (default 0 for k = 1 and 0.7 for k > 1; k > 1 at 0 is refused),
    `category` (rubric category override), `cache` (default true), `cache_dir`
    (default `.harness-cache/judge`, or HARNESS_CACHE_DIR/judge), `include_request`
    (show the judge the conversation, default true), `max_tokens`.
    """
    extra = sorted(set(params) - _ALLOWED)
    if extra:
        raise DetectorParamError("judge", extra[0],
                                 f"unknown setting; allowed: {', '.join(sorted(_ALLOWED))}")
    for flag in ("cache", "include_request"):
        if not isinstance(params.get(flag, True), bool):
            raise DetectorParamError("judge", flag, f"{params[flag]!r} is not true/false")
    cache_dir: Path | None = None
    if params.get("cache", True):
        env_dir = environment().cache_dir
        cache_dir = (Path(params["cache_dir"]) if params.get("cache_dir")
                     else Path(env_dir) / "judge" if env_dir else DEFAULT_CACHE_DIR)
    rubric_dir = Path(params["rubric_dir"]) if params.get("rubric_dir") else None
    if rubric_dir is not None and not rubric_dir.is_dir():
        raise DetectorParamError("judge", "rubric_dir", f"folder {str(rubric_dir)!r} not found")
    k = _int(params, "k", 1, 1, 15)
    raw_temp = params.get("temperature", DEFAULT_MULTI_TEMPERATURE if k > 1 else 0.0)
    if isinstance(raw_temp, bool) or not isinstance(raw_temp, (int, float)) \
            or not 0 <= raw_temp <= 2:
        raise DetectorParamError("judge", "temperature", f"{raw_temp!r} is not a number in "
                                 "[0, 2]")
    if k > 1 and raw_temp == 0:
        raise DetectorParamError(
            "judge", "temperature",
            f"k={k} at temperature 0 asks {k} times for one greedy verdict (servers ignore "
            "the seed at temperature 0), which would be reported as perfect agreement; "
            f"set temperature > 0 (e.g. {DEFAULT_MULTI_TEMPERATURE}) or k: 1")
    rubric = params.get("rubric")
    if rubric is not None and not isinstance(rubric, str):
        raise DetectorParamError("judge", "rubric", "give a rubric name or a file path")
    category = params.get("category")
    defaults = environment().judge_options
    return JudgeDetector(
        model=str(params.get("model") or defaults.get("model") or DEFAULT_MODEL),
        base_url=params.get("base_url") or defaults.get("base_url"),
        api_key_env=str(params.get("api_key_env") or "OPENAI_API_KEY"),
        rubric=rubric, rubric_dir=rubric_dir, k=k, temperature=float(raw_temp),
        category=str(category) if category else None, cache_dir=cache_dir,
        include_request=bool(params.get("include_request", True)),
        max_tokens=_int(params, "max_tokens", DEFAULT_MAX_TOKENS, 16, 4096), context=context,
    )
