"""What an OpenAI chat completion body must look like before the target reads it.

Endpoints that claim OpenAI compatibility send all sorts of shapes (a `message` that is a
string, `content` as a list of parts, `usage` counts as text). Reading such a body field by
field would fail deep inside the target with an AttributeError; checking it here first
turns every one into a `TargetRequestError` (the samples become outcome `error`, the run
exit 4) whose message names the field.
"""

from __future__ import annotations

from typing import Any

from harness.records import Completion

_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), f"a {type(value).__name__}")


def chat_body_problem(body: Any) -> str | None:
    """What is wrong with a parsed `/chat/completions` body, or None when it can be read.

    Checked: the body is an object; `choices` a non-empty list of objects; each choice's
    `message` an object (or null) whose `content` is a string (or null); `finish_reason`,
    `model` and `system_fingerprint` strings (or null); `usage` an object (or null) whose
    token counts are integers (or null).
    """
    if not isinstance(body, dict):
        return f"the body is {_kind(body)}, expected an object"
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return f"`choices` is {_kind(choices)}, expected a non-empty list"
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            return f"`choices[{i}]` is {_kind(choice)}, expected an object"
        message = choice.get("message")
        if message is not None and not isinstance(message, dict):
            return f"`choices[{i}].message` is {_kind(message)}, expected an object"
        content = (message or {}).get("content")
        if content is not None and not isinstance(content, str):
            return f"`choices[{i}].message.content` is {_kind(content)}, expected a string"
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            return f"`choices[{i}].finish_reason` is {_kind(finish)}, expected a string"
        index = choice.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            return f"`choices[{i}].index` is {_kind(index)}, expected an integer"
    for name in ("model", "system_fingerprint"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            return f"`{name}` is {_kind(value)}, expected a string"
    usage = body.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            return f"`usage` is {_kind(usage)}, expected an object"
        for name in _USAGE_COUNTS:
            count = usage.get(name)
            if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                                      or count < 0):
                return f"`usage.{name}` is {_kind(count)}, expected a count"
    return None


def completions_of_body(body: dict[str, Any], *, seed_sent: int | None,
                        latency_s: float | None) -> list[Completion]:
    """The choices of a chat completion body (one `chat_body_problem` found nothing wrong
    with) as Completions, in index order. `usage.completion_tokens` is shared out over the
    choices (the first ones get the remainder), `usage.prompt_tokens` goes on every choice,
    as the prompt each answer was written for."""
    choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
    usage = body.get("usage") or {}
    tokens_in = usage.get("prompt_tokens")
    total_out = usage.get("completion_tokens")
    share, extra = divmod(total_out, len(choices)) if total_out is not None else (0, 0)
    out = []
    for i, choice in enumerate(choices):
        message = choice.get("message") or {}
        finish = choice.get("finish_reason")
        out.append(Completion(
            text=message.get("content") or "",
            finish_reason=finish,
            model=body.get("model"),
            system_fingerprint=body.get("system_fingerprint"),
            blocked=finish == "content_filter",
            tokens_in=tokens_in,
            tokens_out=None if total_out is None else share + (1 if i < extra else 0),
            latency_s=latency_s,
            seed_sent=seed_sent,
        ))
    return out
