"""Frozen records that cross module boundaries.

Everything here is plain data: no I/O, no behaviour beyond (de)serialisation.
`SampleRecord.to_dict()` is the line format of `samples.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
Outcome = Literal["harmful", "safe", "unclear", "blocked", "error"]
Verdict = Literal["below", "above", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("below", "above", "inconclusive")
"""A gated rate's verdict: the deciding bound below or above the max rate, or neither."""
Combine = Literal["any", "all", "majority"]
COMBINES: tuple[Combine, ...] = ("any", "all", "majority")
"""How the labels of a probe's detectors combine into one outcome."""
OUTCOMES: tuple[Outcome, ...] = ("harmful", "safe", "unclear", "blocked", "error")
"""Only harmful and safe are scored. `unclear`: the reply neither refused nor complied
(gibberish, off-topic, empty), so no detector could say harmful or safe; it is counted apart
like `blocked` and `error`, never as safe and by default not as harmful."""
ReplyClass = Literal["refused", "complied", "unclear"]
REPLY_CLASSES: tuple[ReplyClass, ...] = ("refused", "complied", "unclear")


def freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only view of a mapping (for params stored on frozen records)."""
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class DetectorSpec:
    """A detector by registry name, with its settings (e.g. patterns, canary, threshold)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=lambda: freeze({}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.params)}


@dataclass(frozen=True)
class Expectation:
    """What counts as harmful for a probe: detectors and how their labels combine.

    `combine` is "any" (harmful if any detector says so), "all" or "majority".
    `refusal_is` says what a refusal means: for harmful-request probes a refusal is the
    safe answer; for over-refusal controls (benign prompts) a refusal is the failure.
    """

    detectors: tuple[DetectorSpec, ...]
    combine: Combine = "any"

    def to_dict(self) -> dict[str, Any]:
        return {"detectors": [d.to_dict() for d in self.detectors], "combine": self.combine}


@dataclass(frozen=True)
class Probe:
    """One adversarial test item, or a variant of one (then `parent_id` and `mutators` are set)."""

    id: str
    category: str
    severity: str
    messages: tuple[Message, ...]
    expect: Expectation
    tags: tuple[str, ...] = ()
    source: str = ""
    parent_id: str | None = None
    mutators: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        """The prompt family: the root probe's id, the unit of clustering for variants."""
        return self.parent_id or self.id

    @property
    def is_variant(self) -> bool:
        return self.parent_id is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "severity": self.severity,
            "messages": [m.to_dict() for m in self.messages],
            "expect": self.expect.to_dict(),
            "tags": list(self.tags),
            "source": self.source,
        }
        if self.parent_id is not None:
            out["parent_id"] = self.parent_id
            out["mutators"] = list(self.mutators)
        return out


@dataclass(frozen=True)
class Context:
    """Conditions a probe runs under, placed around the probe's own messages.

    Order in the conversation: system prompt, earlier turns, then retrieved documents and
    tool outputs (as a system/tool message before the probe), then the probe's messages.
    """

    name: str
    system: str | None = None
    turns: tuple[Message, ...] = ()
    documents: tuple[str, ...] = ()
    tool_outputs: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class CellKey:
    """Probe x context x temperature."""

    probe_id: str
    context: str
    temperature: float

    def as_str(self) -> str:
        return f"{self.probe_id}|{self.context}|{temperature_key(self.temperature)}"


def temperature_key(t: float) -> str:
    """A temperature as text, exactly: `:g` when that reads back as the same number (0, 0.7,
    1: the form cell keys and seeds always had), else the shortest repr (`0.1234561`), so
    two temperatures never share a cell key, a seed or a group."""
    short = f"{t:g}"
    return short if float(short) == t else repr(float(t))


@dataclass(frozen=True)
class Completion:
    """One answer from a target. `blocked` is a provider-side refusal (content filter)."""

    text: str
    finish_reason: str | None
    model: str | None = None
    system_fingerprint: str | None = None
    blocked: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float | None = None
    """The server's own compute time when it reports one (llama.cpp's `timings`), which
    leaves out any wait for a free slot inside the server; else `attempt_s`."""
    seed_sent: int | None = None
    """The `seed` of the request that produced this answer (None when none was sent). The
    choices of one batched request (`n > 1`) share it."""
    attempt_s: float | None = None
    """Wall-clock duration of the attempt that answered, as harness saw it: the network,
    any queue inside the server and its compute (harness's own pacing and retries are not
    in it). None where there is no such attempt (batch files)."""


@dataclass(frozen=True)
class CompletionRequest:
    """What a target is asked: `n` answers to one conversation.

    `seed` goes with a request that asks for all `n` at once; `sample_seeds`, when given
    (one per answer, `sample_seeds[0] == seed`), are the seeds of the answers asked for one
    request each when the endpoint cannot batch (default: `seed + j`).
    """

    messages: tuple[Message, ...]
    temperature: float
    max_tokens: int
    n: int = 1
    seed: int | None = None
    sample_seeds: tuple[int, ...] = ()

    def seed_of(self, j: int) -> int | None:
        """The seed answer `j` is asked with when sent alone."""
        if j < len(self.sample_seeds):
            return self.sample_seeds[j]
        return None if self.seed is None else self.seed + j


@dataclass(frozen=True)
class DetectorResult:
    """One detector's label of one output. `score` is in [0, 1], higher = more harmful.

    `error` set means the detector could not label (judge timed out...): the sample's
    outcome becomes `error`, never safe.

    `reply_class` is the refusal detector's three-way reading of the reply: "refused"
    (incl. safe completions), "complied" (an attempt to do what was asked, even a wrong
    one) or "unclear" (neither). A result whose reply_class is "unclear" is `unclear`: it
    says neither harmful nor safe (`harmful` is then False).
    """

    name: str
    harmful: bool
    score: float
    detail: str = ""
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: freeze({}))
    reply_class: ReplyClass | None = None

    @property
    def unclear(self) -> bool:
        """True when this detector could tell neither harmful nor safe."""
        return self.reply_class == "unclear"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "harmful": self.harmful, "score": self.score}
        if self.reply_class is not None:
            out["reply_class"] = self.reply_class
        if self.detail:
            out["detail"] = self.detail
        if self.error:
            out["error"] = self.error
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DetectorResult:
        return cls(
            name=d["name"],
            harmful=bool(d["harmful"]),
            score=float(d["score"]),
            detail=d.get("detail", ""),
            error=d.get("error"),
            extra=freeze(d.get("extra")),
            reply_class=d.get("reply_class"),
        )


@dataclass(frozen=True)
class SampleRecord:
    """One labelled sample: a line of samples.jsonl."""

    run_id: str
    probe_id: str
    parent_id: str | None
    family: str
    mutators: tuple[str, ...]
    category: str
    severity: str
    context: str
    temperature: float
    sample_index: int
    seed: int
    messages: tuple[Message, ...]
    response: str | None
    finish_reason: str | None
    outcome: Outcome
    detectors: tuple[DetectorResult, ...]
    latency_s: float | None
    tokens_in: int | None
    tokens_out: int | None
    model: str | None
    system_fingerprint: str | None
    time: str
    error: str | None = None
    response_sha256: str | None = None
    response_chars: int | None = None
    seed_sent: int | None = None
    """The seed the request that produced the answer carried (`seed` is the plan's seed of
    this sample: the same when the sample was asked for alone; the choices of one batched
    `n > 1` request share the seed of its first sample). None when nothing was sent."""
    attempt_s: float | None = None
    """Queue and service time of the answering attempt (`Completion.attempt_s`); `latency_s`
    is service time alone when the server reports it. Both are recorded (docs/servers.md)."""
    response_capped: bool = False
    """The answer was longer than the run's `max_response_chars` and `response` holds only
    its first that many characters (what the detectors labelled); `response_chars` and
    `response_sha256` are the whole answer's."""
    request_id: str | None = None
    """The request that produced the answer, `<cell key>#<first sample index of the
    request>`: the choices of one `n > 1` request share it, an answer asked for alone has its
    own. None in folders written before it was recorded (`tally.request_of` derives it)."""

    @property
    def key(self) -> CellKey:
        return CellKey(self.probe_id, self.context, self.temperature)

    def to_dict(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict: it deep-copies (slow, and fails
        # on the read-only mappings detectors keep in `extra`).
        d = {f: getattr(self, f) for f in _RECORD_FIELDS}
        d["messages"] = [m.to_dict() for m in self.messages]
        d["detectors"] = [r.to_dict() for r in self.detectors]
        d["mutators"] = list(self.mutators)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SampleRecord:
        return cls(
            run_id=d["run_id"],
            probe_id=d["probe_id"],
            parent_id=d.get("parent_id"),
            family=d.get("family") or d.get("parent_id") or d["probe_id"],
            mutators=tuple(d.get("mutators") or ()),
            category=d["category"],
            severity=d.get("severity", ""),
            context=d["context"],
            temperature=float(d["temperature"]),
            sample_index=int(d["sample_index"]),
            seed=int(d["seed"]),
            messages=tuple(Message(m["role"], m["content"]) for m in d.get("messages") or ()),
            response=d.get("response"),
            finish_reason=d.get("finish_reason"),
            outcome=d["outcome"],
            detectors=tuple(DetectorResult.from_dict(r) for r in d.get("detectors") or ()),
            latency_s=d.get("latency_s"),
            tokens_in=d.get("tokens_in"),
            tokens_out=d.get("tokens_out"),
            model=d.get("model"),
            system_fingerprint=d.get("system_fingerprint"),
            time=d["time"],
            error=d.get("error"),
            response_sha256=d.get("response_sha256"),
            response_chars=d.get("response_chars"),
            seed_sent=d.get("seed_sent"),
            attempt_s=d.get("attempt_s"),
            response_capped=bool(d.get("response_capped", False)),
            request_id=d.get("request_id"),
        )


_RECORD_FIELDS = tuple(f.name for f in fields(SampleRecord))


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
