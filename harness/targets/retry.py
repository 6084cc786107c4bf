"""The one retry policy of the harness (tenacity).

Retried: HTTP 429, HTTP 5xx, timeouts and dropped or refused connections, with
exponential backoff and full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015: sleep = uniform(0, min(cap, base * 2**attempt))). A server's
``Retry-After`` / ``retry-after-ms`` header, when present, sets the wait instead
(RFC 9110 §10.2.3), capped at `RetryPolicy.max_retry_after_s`.

Not retried: 400, 401/403, 404 and every other client error: the answer would not change.
The caller maps them (see `harness.targets.openai_target`).
"""

from __future__ import annotations

import email.utils
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.stop import stop_base

from harness.errors import InfrastructureError, TargetUnreachableError

T = TypeVar("T")


class TargetRetriesExhaustedError(TargetUnreachableError):
    """The endpoint kept answering 429/5xx (or kept dropping) until the retries ran out.

    The engine records the samples of that request as outcome `error` (never safe).
    """


class TargetRequestError(InfrastructureError):
    """The endpoint rejected one request (HTTP 400/422) for a reason other than `n` or a
    content filter; the samples of that request become outcome `error`."""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings. `max_attempts` counts the first try."""

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 20.0
    max_total_s: float = 120.0
    max_retry_after_s: float = 60.0
    first_contact_attempts: int = 3


class stop_when(stop_base):  # tenacity names its stop conditions in lower case
    """A tenacity stop condition from a predicate on the retry state."""

    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self.predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.predicate(retry_state)


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors (refused, reset, dropped) are retried."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait a server asked for in ``retry-after-ms`` or ``Retry-After`` (seconds or an
    HTTP date), or None."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    return retry_after_from_headers(exc.response.headers)


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """The wait in ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) of a
    response's headers (any case-insensitive mapping), or None."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # `Retry-After: soon` and the like: our own backoff decides
    if parsed is None:
        return None
    try:
        return max(0.0, parsed.timestamp() - time.time())
    except (OverflowError, OSError, ValueError):
        return None


def backoff_seconds(
    policy: RetryPolicy, attempt: int, exc: BaseException | None, rng: random.Random
) -> float:
    """How long to wait before retry number `attempt` (1-based) after `exc`."""
    asked = retry_after_seconds(exc) if exc is not None else None
    if asked is not None and math.isfinite(asked):
        return min(asked, policy.max_retry_after_s)
    ceiling = min(policy.cap_s, policy.base_s * 2 ** (attempt - 1))
    return rng.uniform(0.0, ceiling)


def _root_os_error(exc: BaseException) -> OSError | None:
    """The innermost OSError under an exception (what the socket really said)."""
    found: OSError | None = None
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError):
            found = cur
        cur = cur.__cause__ or cur.__context__
    return found


_SOCKET_ERRORS = {
    ConnectionRefusedError: "connection refused",
    ConnectionResetError: "connection reset",
    ConnectionAbortedError: "connection aborted",
    socket.gaierror: "host name not found",
}


def describe_failure(exc: BaseException | None) -> str:
    """A short human description of the last failure ("HTTP 429", "connection refused")."""
    if isinstance(exc, openai.APIConnectionError):
        # The SDK's aiohttp transport reports every connection error as a connect timeout,
        # so name what the socket said when there is an OSError underneath.
        root = _root_os_error(exc)
        for kind, words in _SOCKET_ERRORS.items():
            if isinstance(root, kind):
                return words
        if isinstance(exc, openai.APITimeoutError):
            return "request timed out"
        cause = exc.__cause__ or exc.__context__
        return f"connection failed ({type(cause).__name__ if cause else 'no response'})"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__ if exc else "unknown failure"


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    where: str,
    rng: random.Random | None = None,
    on_retry: Callable[[int, BaseException | None, float], None] | None = None,
    answered: Callable[[], bool] | None = None,
) -> T:
    """Run `fn` under the retry policy.

    Non-retryable errors propagate unchanged on the first try. When the retries run
    out, connection failures raise `TargetUnreachableError` and 429/5xx raise
    `TargetRetriesExhaustedError`, both naming `where` (the base URL) and the last failure.

    `answered()` says whether the endpoint has ever sent an HTTP answer (of any status).
    While it has not, connection failures stop after `policy.first_contact_attempts`: a
    refused connection or unknown host at the start of a run is almost always a wrong
    --base-url or a server that is not running, so the run says so within about a second
    instead of backing off for ~20 s. 429/5xx always get the full policy.
    """
    jitter = rng or random.Random()

    def never_reached(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return (answered is not None and not answered()
                and isinstance(exc, openai.APIConnectionError)  # incl. connect timeouts
                and state.attempt_number >= policy.first_contact_attempts)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return backoff_seconds(policy, state.attempt_number, exc, jitter)

    def before_sleep(state: RetryCallState) -> None:
        # Called only when a retry will really happen (tenacity computes the wait before
        # it checks the stop condition, so counting in `wait` counted the last failure too).
        if on_retry is not None:
            exc = state.outcome.exception() if state.outcome else None
            on_retry(state.attempt_number, exc, state.upcoming_sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=wait,
        before_sleep=before_sleep,
        stop=(stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_total_s)
              | stop_when(never_reached)),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await fn()
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        if isinstance(exc, openai.APIStatusError) and not is_retryable(exc):
            raise
        raise _gave_up(exc, where, retrying.statistics.get("attempt_number", "?")) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _gave_up(exc: openai.APIStatusError | openai.APIConnectionError, where: str,
             attempts: object) -> InfrastructureError:
    """The error of a call the retries gave up on: 429/5xx kept coming, or no connection."""
    if isinstance(exc, openai.APIStatusError):
        return TargetRetriesExhaustedError(
            f"{where} still failed after {attempts} attempts (last: {describe_failure(exc)}); "
            "the endpoint is overloaded or failing. Lower --concurrency, or try again later.")
    return TargetUnreachableError(
        f"cannot reach {where} after {attempts} attempts (last: {describe_failure(exc)}); "
        "check that the server is running and that --base-url is right.")
