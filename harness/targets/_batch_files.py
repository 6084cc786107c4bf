"""The Batch API's file formats, pure: input lines from requests, answers from output lines.

Input (OpenAI Batch API, also what `vllm run-batch -i` reads; vLLM's `BatchRequestInput`):
one JSON object a line, `{"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}`, where `body` is a chat completions request (`model`, `messages`, `temperature`,
`max_tokens`, `seed`, and `n` when a line asks for several samples). Output and error
files (both providers): `{"id", "custom_id", "response": {"status_code", "request_id",
"body"} | null, "error": {"code", "message"} | null}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from harness.records import Completion, CompletionRequest
from harness.targets._shape import chat_body_problem, completions_of_body
from harness.targets.base import BatchItem

CHAT_URL: Final = "/v1/chat/completions"
MAX_REQUESTS_PER_BATCH = 50_000
"""OpenAI's limit of requests in one batch (Batch API guide); a larger plan is submitted as
several batches."""
MAX_BYTES_PER_BATCH = 150 * 1024 * 1024
"""Below OpenAI's 200 MB input file limit, with room for JSON escaping differences."""


def custom_id(item: BatchItem) -> str:
    """The line's id: the cell key and its first sample index (unique within a plan)."""
    return f"{item.cell_key}#{item.start}"


def input_line(item: BatchItem, model: str,
               body: Callable[[str, CompletionRequest], dict[str, Any]]) -> dict[str, Any]:
    """One batch input line for `item`; `body(model, request)` is the chat completions
    request body the synchronous target sends (`openai_wire.request_body`)."""
    return {"custom_id": custom_id(item), "method": "POST", "url": CHAT_URL,
            "body": body(model, item.request)}


def chunk_lines(lines: Sequence[dict[str, Any]], sizes: Sequence[int],
                max_requests: int = MAX_REQUESTS_PER_BATCH,
                max_bytes: int = MAX_BYTES_PER_BATCH) -> list[range]:
    """Consecutive ranges of `lines` (with encoded sizes `sizes`) that fit one batch each."""
    out: list[range] = []
    start = 0
    used = 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_requests or used + size > max_bytes):
            out.append(range(start, i))
            start, used = i, 0
        used += size
    if start < len(lines):
        out.append(range(start, len(lines)))
    return out


@dataclass(frozen=True)
class LineAnswer:
    """What one batch line came back as: its choices, or why there are none."""

    custom_id: str
    completions: tuple[Completion, ...] = ()
    error: str | None = None


def _message(body: Any) -> str:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
    return "no message"


def _is_content_filter(status: int, body: Any) -> bool:
    if status != 400 or not isinstance(body, Mapping):
        return False
    inner = body.get("error")
    return isinstance(inner, Mapping) and "content_filter" in \
        f"{inner.get('code')} {inner.get('type')}"


def read_line(obj: Any, *, n: int, seed_sent: int | None, where: str) -> LineAnswer:
    """One output or error file line as a LineAnswer (`n`: choices the line asked for)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("custom_id"), str):
        return LineAnswer("", error=f"{where}: a result line without a custom_id")
    cid = obj["custom_id"]
    response = obj.get("response")
    error = obj.get("error")
    if not isinstance(response, Mapping):
        if isinstance(error, Mapping):
            return LineAnswer(cid, error=f"{where}: request {cid} failed "
                              f"({error.get('code')}: {error.get('message')})")
        return LineAnswer(cid, error=f"{where}: request {cid} has neither response nor error")
    status = response.get("status_code")
    body = response.get("body")
    if status != 200:
        if isinstance(status, int) and _is_content_filter(status, body):
            return LineAnswer(cid, tuple(
                Completion(text="", finish_reason="content_filter", blocked=True,
                           seed_sent=seed_sent) for _ in range(n)))
        return LineAnswer(cid, error=f"{where}: request {cid} answered HTTP {status}: "
                          f"{_message(body)}")
    problem = chat_body_problem(body)
    if problem is not None or not isinstance(body, dict):
        return LineAnswer(cid, error=f"{where}: request {cid} answered a body that is not an "
                          f"OpenAI chat completion: {problem}")
    completions = completions_of_body(body, seed_sent=seed_sent, latency_s=None)
    return LineAnswer(cid, tuple(completions[:n]))


def answers_by_sample(requests: Iterable[Sequence[Any]], lines: Iterable[LineAnswer],
                      missing: str) -> dict[tuple[str, int], Completion | str]:
    """Each sample's answer (a Completion) or error (a message), keyed by (cell key, index).

    `requests` are the recorded `[custom_id, cell_key, start, n, seed]` of the batch; a request
    with no line, or a line with fewer choices than it asked for, gets the error `missing`
    (naming the batch and its status) for the samples without an answer.
    """
    by_id = {str(r[0]): (str(r[1]), int(r[2]), int(r[3])) for r in requests}
    out: dict[tuple[str, int], Completion | str] = {}
    for line in lines:
        got = by_id.get(line.custom_id)
        if got is None:
            continue  # a line of another plan: never mapped onto this one's samples
        cell, start, n = got
        for j in range(n):
            if line.error is not None:
                out[(cell, start + j)] = line.error
            elif j < len(line.completions):
                out[(cell, start + j)] = line.completions[j]
            else:
                out[(cell, start + j)] = (f"{missing}: request {line.custom_id} answered "
                                          f"{len(line.completions)} of {n} choices")
    for cid, (cell, start, n) in by_id.items():
        for j in range(n):
            out.setdefault((cell, start + j), f"{missing}: no result for request {cid}")
    return out
