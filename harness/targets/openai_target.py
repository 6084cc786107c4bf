"""Any OpenAI-compatible chat endpoint, through the official `openai` async client.

One `AsyncOpenAI` client per target, with a connection pool sized to the engine's
concurrency (keep-alive reuse matters more than anything else for throughput). The
client's own retries are off (`max_retries=0`): `harness.targets.retry` is the one
retry policy. Several samples of one cell are asked for in one request (`n`) until the
endpoint rejects `n` or answers fewer choices than asked (llama.cpp, Ollama); then the
target falls back to one sample a request for the rest of the run and `describe()` reports
`n_batching: false`. Each answer carries the seed its request sent (`seed_sent`), its
latency is that of the attempt that answered (or llama.cpp's own compute timings when sent:
docs/servers.md), and request timeouts grow with `max_tokens`.

The API key is read from the environment variable named by `api_key_env` when the
target is built. It is kept only inside the client and never appears in `describe()`,
`repr()`, error messages or logs.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import httpx2
import openai

from harness.errors import (
    InfrastructureError,
    PartialAnswerError,
    TargetAuthError,
    TargetNotFoundError,
    UsageError,
)
from harness.privacy import register_secret, register_url, scrub_url
from harness.records import Completion, CompletionRequest, Message
from harness.targets._shape import chat_body_problem
from harness.targets.base import TargetOptions
from harness.targets.retry import RetryPolicy, TargetRequestError, call_with_retries

_SMALL_FANOUT = 4
# Request timeouts grow with max_tokens: a CPU server can need a second for a few tokens,
# and a fixed timeout that fits 64 tokens cuts off 2,048 (then every retry fails the same way).
# 0.25 s a token is a floor of 4 tokens/s; 60 s covers connection, queue and prompt.
DEFAULT_TIMEOUT_BASE_S = 60.0
DEFAULT_TIMEOUT_PER_TOKEN_S = 0.25
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
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

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
    raise UsageError(
        f"environment variable {api_key_env} is not set, so there is no API key for "
        f"{base_url}. Export it (export {api_key_env}=...) or name another variable with "
        "--api-key-env NAME."
    )


def _body_field(exc: openai.APIStatusError, name: str) -> str:
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get(name) is not None:
            return str(inner.get(name))
    return ""


def _is_content_filter_error(exc: openai.APIStatusError) -> bool:
    return exc.status_code == 400 and "content_filter" in (
        _body_field(exc, "code") + " " + _body_field(exc, "type")
    )


def _rejects_n(exc: openai.APIStatusError) -> bool:
    """Whether an error answer says the endpoint does not take `n > 1`: OpenAI-style 400/422
    naming the parameter, or llama.cpp's server, which answers "Only one completion choice is
    allowed" (as HTTP 500 in some versions, so it must not be retried as a server fault)."""
    if exc.status_code not in (400, 422, 500):
        return False
    message = _body_field(exc, "message") or str(exc.message or "")
    if _ONE_CHOICE.search(message):
        return True
    if exc.status_code == 500:
        return False
    if _body_field(exc, "param") == "n":
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


class _NRejected(Exception):
    pass


class OpenAITarget:
    """`openai:<model>`: an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout_s: float | None = None,
        timeout_base_s: float = DEFAULT_TIMEOUT_BASE_S,
        timeout_per_token_s: float = DEFAULT_TIMEOUT_PER_TOKEN_S,
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        transport: str = "aiohttp",
    ) -> None:
        if not model:
            raise UsageError("target 'openai:' needs a model name, e.g. openai:gpt-4o-mini")
        self.model = model
        self.name = f"openai:{model}"
        register_url(base_url)  # a password or ?key= in the URL is a secret too
        self.display_url = scrub_url((base_url or DEFAULT_BASE_URL).rstrip("/"))
        self.base_url, self._query = split_base_url(base_url or DEFAULT_BASE_URL)
        self.api_key_env = api_key_env or DEFAULT_API_KEY_ENV
        self.concurrency = max(1, int(concurrency))
        self.timeout_s = timeout_s
        self.timeout_base_s = timeout_base_s
        self.timeout_per_token_s = timeout_per_token_s
        if transport not in ("aiohttp", "httpx"):
            raise UsageError(f"transport {transport!r} is not one of: aiohttp, httpx")
        self.transport = transport
        self.retry_policy = retry_policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._n_batching: bool | None = None  # None: not yet known
        self._key = read_api_key(self.api_key_env, self.base_url)
        self._client: openai.AsyncOpenAI | None = None
        self._answered = False  # whether any HTTP answer (of any status) has arrived
        self.retries = 0  # how many retries the policy made (for the manifest)
        self.short_batches = 0  # requests for n > 1 answered with fewer choices

    def __repr__(self) -> str:
        return f"OpenAITarget(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def n_batching(self) -> bool:
        """False once the endpoint rejected `n > 1`; True otherwise."""
        return self._n_batching is not False

    @property
    def supports_n(self) -> bool:
        """The `Target` protocol's flag: the engine reads it to size its batches."""
        return self.n_batching

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            # The SDK's own aiohttp transport (`DefaultAioHttpClient`, vendored in openai) by
            # default: with the plain-body request path its connection pool costs less CPU
            # per request than httpx2's, whose request-to-connection assignment is quadratic
            # in the pool size (docs/performance.md). `transport="httpx"` keeps httpx2.
            factory = (openai.DefaultAioHttpClient if self.transport == "aiohttp"
                       else openai.DefaultAsyncHttpxClient)
            http_client = factory(
                limits=httpx2.Limits(
                    max_connections=self.concurrency,
                    max_keepalive_connections=self.concurrency,
                    keepalive_expiry=30.0,
                ),
                timeout=httpx2.Timeout(self.request_timeout_s(0), connect=10.0),
            )
            self._client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.base_url,
                default_query=self._query or None,
                max_retries=0,
                timeout=httpx2.Timeout(self.request_timeout_s(0), connect=10.0),
                http_client=http_client,
            )
        return self._client

    def describe(self) -> dict[str, object]:
        """Settings for the manifest; never the key itself."""
        return {
            "kind": "openai",
            "name": self.name,
            "model": self.model,
            "base_url": self.display_url,
            "api_key_env": self.api_key_env,
            "concurrency": self.concurrency,
            "transport": self.transport,
            "n_batching": self.n_batching,
            "max_attempts": self.retry_policy.max_attempts,
            "retries": self.retries,
            "short_batches": self.short_batches,
            "request_timeout": (f"{self.timeout_s:g} s" if self.timeout_s is not None else
                                f"{self.timeout_base_s:g} s + {self.timeout_per_token_s:g} s "
                                "x max_tokens"),
        }

    async def aclose(self) -> None:
        """Close the shared connection pool."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, request: CompletionRequest) -> list[Completion]:
        """`request.n` completions: one request with `n` when allowed, else n requests.

        The number of choices that come back is checked: an endpoint that answers fewer
        than `n` (llama.cpp's and Ollama's servers ignore `n` and answer one) is treated
        as not supporting `n` from then on; the answers it gave are kept and the rest are
        asked for one request each. When some of those fail, `PartialAnswerError` carries
        the answers that did come, so none is ever discarded.
        """
        if request.n == 1:
            return (await self._create(request))[:1]
        answered: list[Completion] = []
        if self._n_batching is not False:
            try:
                batch = await self._create(request)
            except _NRejected:
                self._n_batching = False
            else:
                if len(batch) >= request.n:
                    self._n_batching = True
                    return batch[:request.n]
                # Fewer choices than asked for: the server ignored `n`. The answers it gave
                # came from the request's seed, which is the first sample's.
                self._n_batching = False
                self.short_batches += 1
                answered = batch
        return await self._complete_rest(request, answered)

    async def _complete_rest(self, request: CompletionRequest,
                             answered: list[Completion]) -> list[Completion]:
        """Answers len(answered)..n-1 of `request`, one request each, with their own seeds."""
        singles = [replace(request, n=1, seed=request.seed_of(j), sample_seeds=())
                   for j in range(len(answered), request.n)]
        results: list[list[Completion] | BaseException] = []
        if len(singles) <= _SMALL_FANOUT:
            # A few at once (the engine's n-probe sends 2): one round trip, not n.
            results = list(await asyncio.gather(*(self._create(r) for r in singles),
                                                return_exceptions=True))
        else:
            # Larger batches one after another: the engine's workers already keep
            # `concurrency` requests in flight; fanning out here would multiply that (and
            # the memory held). After a failure the rest would only fail the same way.
            for r in singles:
                try:
                    results.append(await self._create(r))
                except InfrastructureError as exc:
                    results.append(exc)
                    break
        out: list[Completion | None] = list(answered)
        failure: BaseException | None = None
        for got in results:
            if isinstance(got, BaseException):
                failure = failure or got
                out.append(None)
            else:
                out.append(got[0])
        out.extend([None] * (request.n - len(out)))
        if failure is None:
            return [c for c in out if c is not None]
        if not isinstance(failure, InfrastructureError) or \
                isinstance(failure, (TargetAuthError, TargetNotFoundError)) or \
                all(c is None for c in out):
            raise failure
        raise PartialAnswerError(str(failure), out) from None

    def _count_retry(self, attempt: int, exc: BaseException | None, wait_s: float) -> None:
        self.retries += 1

    def request_timeout_s(self, max_tokens: int) -> float:
        """Seconds one request may take to answer: a fixed `timeout_s` when the target was
        built with one, else `timeout_base_s + timeout_per_token_s * max_tokens`, so long
        generations on slow (CPU) servers are not cut off as timeouts."""
        if self.timeout_s is not None:
            return self.timeout_s
        return self.timeout_base_s + self.timeout_per_token_s * max(0, max_tokens)

    async def _create(self, request: CompletionRequest) -> list[Completion]:
        """One HTTP request; its choices (at least one) in index order."""
        client = self._get_client()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": wire_messages(request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.n > 1:
            kwargs["n"] = request.n
        if request.seed is not None:
            kwargs["seed"] = request.seed
        timeout = httpx2.Timeout(self.request_timeout_s(request.max_tokens), connect=10.0)
        attempt_s = [0.0]

        deadline_s = self.request_timeout_s(request.max_tokens)

        async def call() -> httpx2.Response:
            # The official client's own request path (`client.post`: its auth, headers,
            # timeouts and error mapping to openai exceptions) with a plain JSON body. The
            # typed `chat.completions.create` wrapper costs ~3 ms of CPU per request to
            # transform params and validate the response into pydantic models: more than
            # the HTTP itself, and the ceiling on one-sample-a-request throughput
            # (docs/performance.md). The body is the same JSON either way.
            started = time.perf_counter()
            try:
                # A total deadline on top of the client's per-read timeout: an endpoint
                # that sends its headers and then a byte every few seconds (slow-loris)
                # never trips a read timeout. Past the deadline it is a timeout (retried).
                async with asyncio.timeout(deadline_s):
                    response = await client.post("/chat/completions", body=kwargs,
                                                 cast_to=httpx2.Response,
                                                 options={"timeout": timeout})
                    _ = response.content
            except TimeoutError:
                raise openai.APITimeoutError(request=httpx2.Request(
                    "POST", f"{self.base_url}/chat/completions")) from None
            except openai.APIStatusError as exc:
                self._answered = True
                if request.n > 1 and _rejects_n(exc):
                    # Not a fault to retry (llama.cpp says so with a 500): ask one at a time.
                    raise _NRejected() from None
                raise
            finally:
                # Latency of this attempt only: earlier failed attempts and the backoff
                # between them are not the model's time.
                attempt_s[0] = time.perf_counter() - started
            self._answered = True
            return response

        try:
            response = await call_with_retries(
                call, policy=self.retry_policy, where=self.base_url, rng=self._rng,
                answered=lambda: self._answered,
                on_retry=self._count_retry,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise TargetAuthError(
                f"the endpoint {self.base_url} rejected the API key from ${self.api_key_env} "
                f"(HTTP {exc.status_code}); check that ${self.api_key_env} holds a valid key "
                "for this endpoint and that it may use this model."
            ) from None
        except openai.NotFoundError:
            raise TargetNotFoundError(
                f"{self.base_url} answered 404 for model {self.model!r}; check the model name "
                f"(GET {self.base_url}/models lists them) and that --base-url ends with the "
                "API root (usually /v1)."
            ) from None
        except openai.APIStatusError as exc:
            if _is_content_filter_error(exc):
                return [
                    Completion(text="", finish_reason="content_filter", blocked=True,
                               latency_s=attempt_s[0], seed_sent=request.seed)
                    for _ in range(request.n)
                ]
            raise TargetRequestError(
                f"{self.base_url} rejected a request for {self.model!r} (HTTP "
                f"{exc.status_code}): {_body_field(exc, 'message') or exc.message}"
            ) from None
        try:
            body = json.loads(response.content)
            problem = chat_body_problem(body)
            if problem is not None:
                raise TargetRequestError(
                    f"{self.base_url} answered with a body that is not an OpenAI chat "
                    f"completion: {problem} (model {self.model!r}); check --base-url")
            choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
            if not choices:
                raise ValueError("no choices")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TargetRequestError(
                f"{self.base_url} answered with a body that is not an OpenAI chat completion "
                f"with at least one choice (model {self.model!r}); check --base-url"
            ) from None
        latency = server_seconds(body)
        if latency is None:
            latency = attempt_s[0]
        usage = body.get("usage") or {}
        n_choices = len(choices)
        tokens_in = usage.get("prompt_tokens")
        total_out = usage.get("completion_tokens")
        tokens_out = None if total_out is None else total_out // n_choices
        model = body.get("model")
        fingerprint = body.get("system_fingerprint")
        out = []
        for choice in choices:
            message = choice.get("message") or {}
            finish = choice.get("finish_reason")
            out.append(Completion(
                text=message.get("content") or "",
                finish_reason=finish,
                model=model,
                system_fingerprint=fingerprint,
                blocked=finish == "content_filter",
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                latency_s=latency,
                seed_sent=request.seed,
            ))
        return out


def build(argument: str, options: TargetOptions) -> OpenAITarget:
    """Target kind `openai:<model>` (registry factory): an OpenAI-compatible endpoint."""
    if not argument:
        raise UsageError(f"target {'openai:'!r} needs a model name after 'openai:', "
                         "e.g. openai:gpt-4o-mini")
    return OpenAITarget(argument, base_url=options.base_url, api_key_env=options.api_key_env,
                        concurrency=options.concurrency)
