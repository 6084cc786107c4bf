"""Counting: per-cell outcome counts, the only per-run state that lives in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.records import temperature_key

# --------------------------------------------------------------------------- counting


@dataclass
class CellCounts:
    """Outcome counts of one cell (what the analysis needs, without the texts)."""

    probe_id: str
    family: str
    parent_id: str | None
    mutators: str
    category: str
    severity: str
    context: str
    temperature: float
    n: int = 0
    n_harmful: int = 0
    n_safe: int = 0
    n_unclear: int = 0
    n_blocked: int = 0
    n_error: int = 0
    n_truncated: int = 0
    """Answers cut off at max_tokens (finish_reason "length"), whatever their outcome."""
    n_empty: int = 0
    """Answers with null or empty content: not scorable (never counted as safe)."""
    n_repeat_harmful: int = 0
    n_repeat_safe: int = 0
    """At temperature 0, answers byte-identical to an earlier answer of the cell: the same
    observation again, so the gate counts it once (n_harmful/n_safe still count every one)."""
    seen: set[str] = field(default_factory=set, repr=False, compare=False)
    """Response hashes already counted in this cell (temperature 0 only)."""
    flagged: dict[str, int] = field(default_factory=dict)
    """Samples each detector labelled harmful (for corrections that need one detector's
    own labels, not the combined outcome)."""
    labelled: dict[str, int] = field(default_factory=dict)
    """Scored samples (harmful or safe) each detector labelled without error: a
    calibration of one detector corrects only groups that detector labels throughout."""
    tokens_in: int = 0
    """Prompt tokens the endpoint reported, once per request (`add_tokens`)."""
    tokens_out: int = 0
    """Completion tokens the endpoint reported for this cell's answers."""
    n_without_usage: int = 0
    """Answered samples whose answer came without token counts (`usage` missing)."""
    requests: dict[str, list[int]] = field(default_factory=dict)
    """Per request id (`request_of`): [harmful, scored] observations (temperature-0 repeats
    not counted), for the analyses that cluster on the request."""

    def add_tokens(self, rec: dict[str, Any]) -> None:
        """Count one record's tokens. The prompt is billed once per request: with `n`
        choices in one request every choice carries the request's `prompt_tokens`, so
        they are counted on the choice whose seed is the one sent (its first sample), or
        on every record that has no `seed_sent`."""
        out = rec.get("tokens_out")
        if out is None:
            # Errors and content-filter blocks usually come without an answer to count;
            # a text answer without counts is usage the endpoint did not report.
            if rec.get("outcome") not in ("error", "blocked"):
                self.n_without_usage += 1
        else:
            self.tokens_out += int(out)
        prompt = rec.get("tokens_in")
        sent = rec.get("seed_sent")
        if prompt is not None and (sent is None or sent == rec.get("seed")):
            self.tokens_in += int(prompt)

    @property
    def n_scored(self) -> int:
        """Samples labelled harmful or safe: not errors, not unclear replies.

        (Blocked answers are still scored here; how the gate bounds them is the gate's.)
        """
        return self.n - self.n_error - self.n_unclear

    def add(self, outcome: str) -> None:
        self.n += 1
        if outcome == "harmful":
            self.n_harmful += 1
        elif outcome == "safe":
            self.n_safe += 1
        elif outcome == "unclear":
            self.n_unclear += 1
        elif outcome == "blocked":
            self.n_blocked += 1
        elif outcome == "empty":
            self.n_empty += 1
        else:
            self.n_error += 1


def cell_key(rec: dict[str, Any]) -> str:
    """The key of a record's cell in `Tally.cells`: probe | context | temperature."""
    return f"{rec['probe_id']}|{rec['context']}|{temperature_key(float(rec['temperature']))}"


def request_of(rec: dict[str, Any], cell: str) -> str:
    """The request id of a record: its `request_id`; in folders written before that was
    recorded, the cell and the seed the request sent (the choices of one `n > 1` request
    share it), else the sample alone."""
    rid = rec.get("request_id")
    if rid:
        return str(rid)
    sent = rec.get("seed_sent")
    if sent is not None:
        return f"{cell}@{sent}"
    return f"{cell}#{rec.get('sample_index')}"


@dataclass
class Tally:
    """Running counts over a run: per cell, plus the models and fingerprints seen."""

    cells: dict[str, CellCounts] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, int] = field(default_factory=dict)
    n: int = 0
    n_error: int = 0
    detector_errors: dict[str, int] = field(default_factory=dict)
    """Samples on which each detector failed (so an error is not blamed on the target)."""
    n_capped: int = 0
    """Answers longer than the run's max_response_chars, stored and labelled cut."""

    def add(self, rec: dict[str, Any], key: str | None = None) -> None:
        """Count one record (`key`: its `cell_key`, when the caller has it already)."""
        key = key or cell_key(rec)
        cc = self.cells.get(key)
        if cc is None:
            cc = self.cells[key] = CellCounts(
                rec["probe_id"], rec.get("family") or rec["probe_id"], rec.get("parent_id"),
                " > ".join(rec.get("mutators") or ()), rec["category"], rec.get("severity", ""),
                rec["context"], float(rec["temperature"]))
        outcome = rec["outcome"]
        # A record that carries the answer field with nothing in it (null or "") said nothing.
        empty = "response" in rec and rec["response"] in (None, "") and \
            not rec.get("response_chars")
        digest = rec.get("response_sha256") or rec.get("response")
        if outcome == "safe" and empty:
            outcome = "empty"  # nothing was said: not evidence of safety
        elif outcome in ("harmful", "safe"):
            repeat = cc.temperature == 0.0 and bool(digest) and digest in cc.seen
            if repeat:
                if outcome == "harmful":
                    cc.n_repeat_harmful += 1
                else:
                    cc.n_repeat_safe += 1
            else:
                if cc.temperature == 0.0 and digest:
                    cc.seen.add(digest)
                obs = cc.requests.setdefault(request_of(rec, key), [0, 0])
                obs[0] += outcome == "harmful"
                obs[1] += 1
        cc.add(outcome)
        cc.add_tokens(rec)
        if rec.get("finish_reason") == "length":
            cc.n_truncated += 1
        scored = rec["outcome"] in ("harmful", "safe")
        for d in rec.get("detectors") or ():
            if scored and not d.get("error"):
                cc.labelled[d["name"]] = cc.labelled.get(d["name"], 0) + 1
            if d.get("error"):
                self.detector_errors[d["name"]] = self.detector_errors.get(d["name"], 0) + 1
            elif d.get("harmful"):
                cc.flagged[d["name"]] = cc.flagged.get(d["name"], 0) + 1
        self.n += 1
        if rec.get("response_capped"):
            self.n_capped += 1
        if rec["outcome"] == "error":
            self.n_error += 1
        if rec.get("model"):
            self.models[rec["model"]] = self.models.get(rec["model"], 0) + 1
        fp = rec.get("system_fingerprint")
        if fp:
            self.fingerprints[fp] = self.fingerprints.get(fp, 0) + 1
