"""The OpenAI chat-completions wire format, without a client: endpoint URL and key, the
request body, the error bodies that mean something other than a fault, and the answer body
read into `Completion` records.

Pure functions (only `read_api_key` reads the one environment variable the user named), so
every OpenAI-compatible kind (`openai`, a batch API, ...) sends and reads the same JSON.
`harness.targets.openai_target` is the client around them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlparse, urlsplit, urlunsplit

import openai

from harness.errors import MissingKeyError, UsageError
from harness.privacy import register_secret, scrub_url
from harness.records import Completion, CompletionRequest, Message
from harness.targets._shape import chat_body_problem, completions_of_body
from harness.targets.retry import TargetRequestError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
LOCAL_DUMMY_KEY = "sk-local-no-key"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_N_WORD = re.compile(r"(?<![\w-])['\"`]?n['\"`]?(?![\w-])")  # the parameter `n` named in a message
_ONE_CHOICE = re.compile(r"only one (completion )?choice", re.IGNORECASE)


def is_local(base_url: str) -> bool:
    """Whether the endpoint is on this machine (then a missing key is fine)."""
    return (urlparse(base_url).hostname or "") in _LOCAL_HOSTS


def split_base_url(url: str) -> tuple[str, dict[str, str]]:
    """(the base URL without its query, the query parameters): `?key=...` endpoints get the
    parameters on every request (the client appends paths to the base URL, so a query left
    in it would end up in the middle of the path). A user:password in the URL is refused:
    the client sends the key as a Bearer token and cannot send both."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None or parts.username is not None
    except ValueError as exc:
        raise UsageError(f"--base-url is not a URL ({exc}); e.g. http://127.0.0.1:8080/v1"
                         ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url {scrub_url(url)!r} is not an http(s) URL; e.g. "
                         "http://127.0.0.1:8080/v1")
    if has_password:
        raise UsageError(
            f"--base-url {scrub_url(url)!r} carries a user name or password (user:pass@); "
            "the API key is sent as a Bearer token from the variable --api-key-env names. "
            "Remove the credentials from the URL and put the key in that variable.")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, query


def read_api_key(api_key_env: str, base_url: str) -> str:
    """The key from the environment; a dummy for local endpoints; else a UsageError."""
    value = os.environ.get(api_key_env, "")
    if value:
        register_secret(value)  # scrubbed by value from everything written or printed
        return value
    if is_local(base_url):
        return LOCAL_DUMMY_KEY
    raise MissingKeyError(
        f"environment variable {api_key_env} is not set, so there is no API key for "
        f"{base_url}. Export it (export {api_key_env}=...) or name another variable with "
        "--api-key-env NAME.", api_key_env)


def body_field(exc: openai.APIStatusError, name: str) -> str:
    """A field of an error answer's `error` object (or of the body itself), else ""."""
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get(name) is not None:
            return str(inner.get(name))
    return ""


def is_content_filter_error(exc: openai.APIStatusError) -> bool:
    """Whether an error answer is the provider's content filter (outcome `blocked`)."""
    return exc.status_code == 400 and "content_filter" in (
        body_field(exc, "code") + " " + body_field(exc, "type")
    )


def rejects_n(exc: openai.APIStatusError) -> bool:
    """Whether an error answer says the endpoint does not take `n > 1`: OpenAI-style 400/422
    naming the parameter, or llama.cpp's server, which answers "Only one completion choice is
    allowed" (as HTTP 500 in some versions, so it must not be retried as a server fault)."""
    if exc.status_code not in (400, 422, 500):
        return False
    message = body_field(exc, "message") or str(exc.message or "")
    if _ONE_CHOICE.search(message):
        return True
    if exc.status_code == 500:
        return False
    if body_field(exc, "param") == "n":
        return True
    return _N_WORD.search(message) is not None


def server_seconds(body: Any) -> float | None:
    """The compute time the server reports for a request, when it does: the ``timings``
    (``prompt_ms`` + ``predicted_ms``) llama.cpp's own server adds to the body, which
    exclude the time the request waited for a free slot. (``openai-processing-ms``, sent by
    OpenAI and by llama-cpp-python, is not used: llama-cpp-python's includes its queue.)"""
    timings = body.get("timings") if isinstance(body, dict) else None
    if isinstance(timings, dict):
        parts = [timings.get("prompt_ms"), timings.get("predicted_ms")]
        if all(isinstance(p, (int, float)) and p >= 0 for p in parts):
            return float(sum(parts)) / 1000.0  # type: ignore[arg-type]
    return None


def wire_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """The messages as sent. A `tool` turn that answers no tool call of the conversation (a
    probe's pasted tool output) is not valid chat-completions input: OpenAI answers 400 and
    llama-cpp-python 500. It goes as the tool-labelled system message that contexts use for
    tool outputs (`harness.plan`); the records keep the probe's own messages."""
    out = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "system", "content": f"Tool output:\n{m.content}"})
        else:
            out.append(m.to_dict())
    return out


def request_body(model: str, request: CompletionRequest) -> dict[str, Any]:
    """The JSON body of one `/chat/completions` request (`n` and `seed` only when set)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": wire_messages(request.messages),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    if request.n > 1:
        body["n"] = request.n
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def read_completions(content: bytes, *, where: str, model: str, seed_sent: int | None,
                     attempt_s: float) -> list[Completion]:
    """An answer body -> its choices (at least one) as `Completion`s, in index order.

    The latency is the server's own compute time when it reports one, else `attempt_s`
    (the attempt that answered), which each answer also keeps as `attempt_s`. Output
    tokens are shared out over the choices (usage counts the whole request;
    `completions_of_body`). A body that is not a chat completion
    is a `TargetRequestError` naming the field, so the samples become outcome `error`."""
    try:
        body = json.loads(content)
        problem = chat_body_problem(body)
        if problem is not None:
            raise TargetRequestError(
                f"{where} answered with a body that is not an OpenAI chat "
                f"completion: {problem} (model {model!r}); check --base-url")
        choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
        if not choices:
            raise ValueError("no choices")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TargetRequestError(
            f"{where} answered with a body that is not an OpenAI chat completion "
            f"with at least one choice (model {model!r}); check --base-url"
        ) from None
    latency = server_seconds(body)
    return [replace(c, attempt_s=attempt_s) for c in completions_of_body(
        body, seed_sent=seed_sent, latency_s=attempt_s if latency is None else latency)]
