"""Planning: cells, conversations, per-sample seeds and the lazy request plan."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from harness.errors import UsageError
from harness.records import (
    CellKey,
    Context,
    Message,
    Probe,
)
from harness.suites import Suite

MAX_BATCH_N = 50  # choices per request when the endpoint accepts `n`


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Cell:
    """Probe x context x temperature, with the conversation sent for it."""

    probe: Probe
    context: Context
    temperature: float
    messages: tuple[Message, ...]

    @property
    def key(self) -> CellKey:
        return CellKey(self.probe.id, self.context.name, self.temperature)


def build_messages(probe: Probe, context: Context) -> tuple[Message, ...]:
    """The conversation for a probe under a context (order documented in architecture.md)."""
    out: list[Message] = []
    if context.system:
        out.append(Message("system", context.system))
    out.extend(context.turns)
    if context.documents:
        docs = "\n\n".join(f"[document {i + 1}]\n{d}" for i, d in enumerate(context.documents))
        out.append(Message("system", f"Retrieved documents:\n\n{docs}"))
    for t in context.tool_outputs:
        out.append(Message("system", f"Tool output:\n{t}"))
    out.extend(probe.messages)
    return tuple(out)


def plan_cells(suite: Suite) -> list[Cell]:
    """Every cell of the suite, in a stable order."""
    return [
        Cell(p, c, t, build_messages(p, c))
        for p in suite.probes
        for c in suite.contexts
        for t in suite.temperatures
    ]


@dataclass(frozen=True)
class Shard:
    """Part `index` (1-based) of `count` of a plan, as in `--shard 2/4`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, setting: str = "--shard") -> Shard:
    """Parse `I/N` (1 <= I <= N) or raise UsageError naming the setting."""
    head, sep, tail = text.partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index = count = 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise UsageError(f"{setting} {text!r}: write I/N with 1 <= I <= N, e.g. 2/4 (with a "
                         "Kubernetes indexed Job: $((JOB_COMPLETION_INDEX + 1))/N)")
    return Shard(index, count)


def shard_of(key: CellKey, count: int) -> int:
    """The 1-based shard (of `count`) that samples a cell.

    sha256 of the cell key text, not Python's salted `hash()`: every machine, process and
    Python version puts a cell in the same shard, and the partition does not depend on the
    seed, the sample count or the order of the suite's cells.
    """
    digest = hashlib.sha256(key.as_str().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def shard_cells(cells: Sequence[Cell], shard: Shard | None) -> list[Cell]:
    """The cells of one shard, in plan order (all of them when `shard` is None)."""
    if shard is None:
        return list(cells)
    return [c for c in cells if shard_of(c.key, shard.count) == shard.index]


def derive_seed(base_seed: int, key: CellKey, index: int) -> int:
    """A 63-bit seed for one sample, stable across runs, resumes and orderings."""
    h = hashlib.blake2b(f"{base_seed}|{key.as_str()}|{index}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big") >> 1


@dataclass(frozen=True)
class WorkItem:
    """One request: `count` consecutive samples of a cell starting at `start`."""

    cell: Cell
    start: int
    count: int


def plan_work(cells: Sequence[Cell], samples: int, batch_n: int | Callable[[], int],
              done: set[tuple[str, int]] | None = None,
              start_index: int = 0) -> Iterator[WorkItem]:
    """Lazily yield the requests still to make (skipping samples already done).

    `batch_n` may be a callable, read per cell: a target that learns mid-run that the
    endpoint rejects `n` then gets one-sample requests instead of fanning a batch out.
    """
    for cell in cells:
        size = batch_n() if callable(batch_n) else batch_n
        ks = cell.key.as_str()
        run_start: int | None = None
        run_len = 0
        for i in range(start_index, start_index + samples):
            missing = done is None or (ks, i) not in done
            if missing:
                if run_start is None:
                    run_start, run_len = i, 0
                run_len += 1
                if run_len == size:
                    yield WorkItem(cell, run_start, run_len)
                    run_start = None
            elif run_start is not None:
                yield WorkItem(cell, run_start, run_len)
                run_start = None
        if run_start is not None:
            yield WorkItem(cell, run_start, run_len)


# --------------------------------------------------------------------------- requests and tokens

CHARS_PER_TOKEN = 4
"""About four characters of English text a token (OpenAI's rule of thumb, "What are tokens
and how to count them?"); a planning figure, not the tokenizer's count."""


@dataclass(frozen=True)
class RequestEstimate:
    """What a plan asks of the target before anything is sent (`harness plan SUITE`)."""

    cells: int
    samples: int
    requests: int
    n_per_request: int
    tokens_in: int
    """Estimated prompt tokens: the conversation's characters / CHARS_PER_TOKEN, once per
    request."""
    max_tokens_out: int
    """At most: samples x max_tokens (answers stop earlier as a rule)."""

    def to_dict(self) -> dict[str, int]:
        return {"cells": self.cells, "samples": self.samples, "requests": self.requests,
                "n_per_request": self.n_per_request, "tokens_in_estimated": self.tokens_in,
                "max_tokens_out": self.max_tokens_out}


def estimate_requests(cells: Sequence[Cell], samples: int, max_tokens: int,
                      n_per_request: int = MAX_BATCH_N) -> RequestEstimate:
    """Requests and tokens of a plan of `samples` per cell, `n_per_request` choices a request
    (1 for endpoints without `n`). The engine sends the plan's first request with 2 samples
    alone (to learn whether the endpoint takes `n`), which is one request more."""
    per_cell = -(-samples // n_per_request)
    split_first = bool(cells) and min(samples, n_per_request) > 2

    def prompt_tokens(cell: Cell) -> int:
        return sum(len(m.content) for m in cell.messages) // CHARS_PER_TOKEN + 1

    tokens_in = sum(prompt_tokens(c) for c in cells) * per_cell
    if split_first:
        tokens_in += prompt_tokens(cells[0])
    requests = len(cells) * per_cell + int(split_first)
    return RequestEstimate(len(cells), len(cells) * samples, requests, n_per_request,
                           tokens_in, len(cells) * samples * max_tokens)
