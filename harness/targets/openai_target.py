"""Any OpenAI-compatible chat endpoint, through the official `openai` async client.

One `AsyncOpenAI` client per target, with a connection pool sized to the engine's
concurrency (keep-alive reuse matters more than anything else for throughput). The
client's own retries are off (`max_retries=0`): `harness.targets.retry` is the one
retry policy. Several samples of one cell are asked for in one request (`n`) until the
endpoint rejects `n` or answers fewer choices than asked (llama.cpp, Ollama); then the
target falls back to one sample a request for the rest of the run and `describe()` reports
`n_batching: false`. Each answer carries the seed its request sent (`seed_sent`), its
latency is that of the attempt that answered (or llama.cpp's own compute timings when sent:
docs/servers.md), and request timeouts grow with `max_tokens`. Every attempt passes the
target's `RateLimiter` (`harness.targets.ratelimit`): `--rpm`/`--tpm` budgets, the endpoint's
``x-ratelimit-*`` headers and ``Retry-After``, and an AIMD window of requests in flight that
halves on 429 and grows back to `concurrency`.

The API key is read from the environment variable named by `api_key_env` when the
target is built. It is kept only inside the client and never appears in `describe()`,
`repr()`, error messages or logs.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from typing import Any

import httpx2
import openai

from harness.errors import (
    InfrastructureError,
    PartialAnswerError,
    TargetAuthError,
    TargetNotFoundError,
    UsageError,
)
from harness.privacy import register_url, scrub_url
from harness.records import Completion, CompletionRequest
from harness.targets.base import ModerationResult, TargetOptions
from harness.targets.openai_wire import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_BASE_URL,
    body_field,
    is_content_filter_error,
    read_api_key,
    read_completions,
    rejects_n,
    request_body,
    split_base_url,
)
from harness.targets.ratelimit import RateBudget, RateLimiter, estimate_tokens
from harness.targets.retry import RetryPolicy, TargetRequestError, call_with_retries

_SMALL_FANOUT = 4
# Request timeouts grow with max_tokens: a CPU server can need a second for a few tokens,
# and a fixed timeout that fits 64 tokens cuts off 2,048 (then every retry fails the same way).
# 0.25 s a token is a floor of 4 tokens/s; 60 s covers connection, queue and prompt.
DEFAULT_TIMEOUT_BASE_S = 60.0
DEFAULT_TIMEOUT_PER_TOKEN_S = 0.25


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
        budget: RateBudget | None = None,
        adaptive: bool = True,
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
        # Every attempt passes the limiter: budgets, x-ratelimit-* headers, Retry-After
        # pauses and the AIMD window of requests in flight (`concurrency` is its ceiling).
        self.limiter = RateLimiter(self.concurrency, budget, adaptive=adaptive)

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
            "rate_limits": self.limiter.describe(),
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

    async def moderate(self, text: str, *, model: str) -> ModerationResult:
        """Category scores for `text` from the endpoint's `/moderations` (the
        `ModerationTarget` protocol): the same client, key and retry policy as `complete`.

        A 404 is a `TargetNotFoundError` saying the server has no moderation endpoint
        (llama.cpp, vLLM and Ollama serve none)."""
        client = self._get_client()

        async def call() -> Any:
            try:
                response = await client.moderations.create(model=model, input=text)
            except openai.APIStatusError:
                self._answered = True
                raise
            self._answered = True
            return response

        url = f"{self.display_url}/moderations"
        try:
            response = await call_with_retries(call, policy=self.retry_policy, where=url,
                                               rng=self._rng, answered=lambda: self._answered,
                                               on_retry=self._count_retry)
        except openai.NotFoundError:
            raise TargetNotFoundError(
                f"{url} answered 404 Not Found: that server has no moderation endpoint "
                "(llama.cpp, vLLM and Ollama serve none)") from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        result = response.results[0]
        raw = result.category_scores.model_dump(by_alias=True, exclude_none=True)
        scores = {str(k): float(v) for k, v in raw.items() if isinstance(v, (int, float))}
        return ModerationResult(scores, bool(result.flagged), getattr(response, "model", None))

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
        """One HTTP request (with retries); its choices (at least one) in index order."""
        attempt_s = [0.0]
        try:
            response = await call_with_retries(
                lambda: self._post(request, attempt_s), policy=self.retry_policy,
                where=self.base_url, rng=self._rng, answered=lambda: self._answered,
                on_retry=self._count_retry,
            )
        except openai.APIStatusError as exc:
            if is_content_filter_error(exc):
                return [
                    Completion(text="", finish_reason="content_filter", blocked=True,
                               latency_s=attempt_s[0], seed_sent=request.seed,
                               attempt_s=attempt_s[0])
                    for _ in range(request.n)
                ]
            raise self._status_error(exc) from None
        return read_completions(response.content, where=self.base_url, model=self.model,
                                seed_sent=request.seed, attempt_s=attempt_s[0])

    async def _post(self, request: CompletionRequest, attempt_s: list[float]
                    ) -> httpx2.Response:
        """One attempt: POST the body, read the answer; its latency goes to attempt_s[0].

        The official client's own request path (`client.post`: its auth, headers, timeouts
        and error mapping to openai exceptions) with a plain JSON body. The typed
        `chat.completions.create` wrapper costs ~3 ms of CPU per request to transform params
        and validate the response into pydantic models: more than the HTTP itself, and the
        ceiling on one-sample-a-request throughput (docs/performance.md). The body is the
        same JSON either way."""
        client = self._get_client()
        deadline_s = self.request_timeout_s(request.max_tokens)
        timeout = httpx2.Timeout(deadline_s, connect=10.0)
        ticket = await self.limiter.acquire(estimate_tokens(
            sum(len(m.content) for m in request.messages), request.max_tokens, request.n))
        status: int | None = None
        headers: Any = None
        started = time.perf_counter()
        try:
            # A total deadline on top of the client's per-read timeout: an endpoint that
            # sends its headers and then a byte every few seconds (slow-loris) never trips
            # a read timeout. Past the deadline it is a timeout (retried).
            async with asyncio.timeout(deadline_s):
                response = await client.post("/chat/completions",
                                             body=request_body(self.model, request),
                                             cast_to=httpx2.Response,
                                             options={"timeout": timeout})
                _ = response.content
            status, headers = response.status_code, response.headers
        except TimeoutError:
            raise openai.APITimeoutError(request=httpx2.Request(
                "POST", f"{self.base_url}/chat/completions")) from None
        except openai.APIStatusError as exc:
            self._answered = True
            status, headers = exc.status_code, exc.response.headers
            if request.n > 1 and rejects_n(exc):
                # Not a fault to retry (llama.cpp says so with a 500): ask one at a time.
                raise _NRejected() from None
            raise
        finally:
            # Latency of this attempt only: earlier failed attempts and the backoff between
            # them are not the model's time.
            attempt_s[0] = time.perf_counter() - started
            self.limiter.release(ticket, status, headers)
        self._answered = True
        return response

    def _status_error(self, exc: openai.APIStatusError) -> InfrastructureError:
        """The harness error for an error answer the retries gave up on (or never retry)."""
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return TargetAuthError(
                f"the endpoint {self.base_url} rejected the API key from ${self.api_key_env} "
                f"(HTTP {exc.status_code}); check that ${self.api_key_env} holds a valid key "
                "for this endpoint and that it may use this model."
            )
        if isinstance(exc, openai.NotFoundError):
            return TargetNotFoundError(
                f"{self.base_url} answered 404 for model {self.model!r}; check the model name "
                f"(GET {self.base_url}/models lists them) and that --base-url ends with the "
                "API root (usually /v1)."
            )
        return TargetRequestError(
            f"{self.base_url} rejected a request for {self.model!r} (HTTP "
            f"{exc.status_code}): {body_field(exc, 'message') or exc.message}"
        )


def build(argument: str, options: TargetOptions) -> OpenAITarget:
    """Target kind `openai:<model>` (registry factory): an OpenAI-compatible endpoint."""
    if not argument:
        raise UsageError(f"target {'openai:'!r} needs a model name after 'openai:', "
                         "e.g. openai:gpt-4o-mini")
    try:
        budget = RateBudget(rpm=options.rpm, tpm=options.tpm)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return OpenAITarget(argument, base_url=options.option("base_url"),
                        api_key_env=options.option("api_key_env"),
                        concurrency=options.concurrency, budget=budget,
                        retry_policy=options.retry_policy)
