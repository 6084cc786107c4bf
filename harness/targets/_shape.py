"""What an OpenAI chat completion body must look like before the target reads it.

Endpoints that claim OpenAI compatibility send all sorts of shapes (a `message` that is a
string, `content` as a list of parts, `usage` counts as text). Reading such a body field by
field would fail deep inside the target with an AttributeError; checking it here first
turns every one into a `TargetRequestError` (the samples become outcome `error`, the run
exit 4) whose message names the field.
"""

from __future__ import annotations

from typing import Any

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
