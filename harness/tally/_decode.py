"""The typed decoder of samples.jsonl lines (msgspec): only the fields the counts read, typed
as `harness.store.record_shape_problem` checks them, or more strictly. Imported only when a
file is read (`harness.tally._file`), so a run does not import msgspec before sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from harness.records import OUTCOMES

DecodeError = msgspec.MsgspecError


class _Detector(msgspec.Struct):
    name: str
    harmful: Any
    score: float
    error: Any = None


class _Message(msgspec.Struct):
    role: str
    content: str


class _Record(msgspec.Struct):
    """The fields of a sample record the counts read, typed as `record_shape_problem` checks
    them (or more strictly: a bool score, a float token count or a null severity, which the
    store accepts, make the reader fall back to the store's own)."""

    run_id: str
    probe_id: str
    category: str
    context: str
    temperature: float
    sample_index: int
    seed: int
    outcome: str
    time: str
    family: str | None = None
    parent_id: str | None = None
    mutators: list[str] | None = None
    severity: str = ""
    messages: list[_Message] | None = None
    response: str | msgspec.UnsetType | None = msgspec.UNSET
    response_chars: int | None = None
    response_sha256: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    seed_sent: int | None = None
    request_id: str | None = None
    finish_reason: str | None = None
    detectors: list[_Detector] | None = None
    response_capped: bool = False
    model: str | None = None
    system_fingerprint: str | None = None


decode: Callable[[bytes], _Record] = msgspec.json.Decoder(_Record).decode


class Refused(Exception):
    """The typed decoder refused a line: read the file with the store's reader instead."""


def as_dict(r: _Record) -> dict[str, Any]:
    """The record as `Tally.add` reads it (the same keys a json.loads of the line gives for
    those fields; `response` only when the line has one)."""
    if r.outcome not in OUTCOMES:
        raise Refused
    d: dict[str, Any] = {
        "probe_id": r.probe_id, "context": r.context, "temperature": r.temperature,
        "family": r.family, "parent_id": r.parent_id, "mutators": r.mutators,
        "category": r.category, "severity": r.severity, "outcome": r.outcome,
        "response_sha256": r.response_sha256, "response_chars": r.response_chars,
        "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "seed": r.seed,
        "seed_sent": r.seed_sent, "request_id": r.request_id,
        "sample_index": r.sample_index, "finish_reason": r.finish_reason,
        "response_capped": r.response_capped, "model": r.model,
        "system_fingerprint": r.system_fingerprint,
        "detectors": None if r.detectors is None else [
            {"name": x.name, "harmful": x.harmful, "error": x.error} for x in r.detectors]}
    if r.response is not msgspec.UNSET:
        d["response"] = r.response
    return d


def record(raw: bytes) -> tuple[dict[str, Any], int]:
    """One line as (the dict `Tally.add` reads, its sample index); raises `DecodeError` or
    `Refused` for a line the store's reader must judge."""
    r = decode(raw)
    return as_dict(r), r.sample_index
