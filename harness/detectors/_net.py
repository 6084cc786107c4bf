"""Network plumbing shared by the moderation and judge detectors.

One `openai.AsyncOpenAI` client per (base URL, API-key variable, event loop), reused by
every detector that talks to that endpoint. Retries go through the project's single
retry policy in `harness.targets.retry` (imported lazily); the client's own retries are
off so the two never stack.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from harness.detectors.base import DetectorParamError
from harness.targets.base import Target

T = TypeVar("T")

# Base URL meaning "the embedded simulator, in process, no HTTP": the `sim` target.
SIM_BASE_URL = "sim"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_DUMMY_KEY = "sk-local-no-key"  # local servers need some bearer token; this is not a secret

_clients: dict[tuple[str | None, str, int], Any] = {}


def in_process_target(base_url: str | None) -> Target | None:
    """The target a detector's `base_url` names when it is not an HTTP endpoint: `sim` is the
    simulator as a target (`harness.targets`, kind `sim`), which answers judge prompts with
    the simulated judge and moderates with the simulated classifier. None for a URL."""
    if base_url != SIM_BASE_URL:
        return None
    from harness.targets import make_target

    return make_target("sim")


def resolve_api_key(detector: str, base_url: str | None, api_key_env: str | None) -> str:
    """The API key from the named environment variable (never stored or logged).

    A local base URL (127.0.0.1 / localhost) gets a dummy key when the variable is unset,
    as local OpenAI-compatible servers usually ignore it.
    """
    env = api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env)
    if key:
        from harness.privacy import register_secret, register_url

        register_secret(key)  # scrubbed by value from everything written or printed
        register_url(base_url)
        return key
    host = urlparse(base_url).hostname if base_url else None
    if host in _LOCAL_HOSTS:
        return _DUMMY_KEY
    raise DetectorParamError(
        detector, "api_key_env",
        f"environment variable {env} is not set; export the API key for "
        f"{base_url or 'the OpenAI API'} in {env}, or name another variable with api_key_env",
    )


def get_client(base_url: str | None, api_key: str, api_key_env: str) -> Any:
    """The shared async client for an endpoint in the running event loop."""
    import openai  # imported here: the rules detectors must not pay for it

    loop = asyncio.get_running_loop()
    key = (base_url, api_key_env, id(loop))
    client = _clients.get(key)
    if client is None:
        # An httpx connection pool is bound to the loop that created it, so each loop
        # (e.g. one asyncio.run per nightly run in a watch) gets its own client.
        client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        _clients[key] = client
    return client


async def close_clients() -> None:
    """Close the clients created in the running loop."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _clients if k[2] == loop_id]:
        client = _clients.pop(key)
        await client.close()


async def with_retry(call: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Run `call` under the project's one retry policy (`harness.targets.retry`).

    429/5xx/timeouts/dropped connections are retried with backoff (honouring Retry-After);
    other errors propagate at once. Imported lazily: it pulls in `openai` and `tenacity`.
    """
    from harness.targets.retry import RetryPolicy, call_with_retries

    return await call_with_retries(call, policy=_POLICY or RetryPolicy(), where=what)


_POLICY: Any = None


def set_retry_policy(policy: Any) -> None:
    """Override the retry policy for detector calls (tests use one with short waits)."""
    global _POLICY
    _POLICY = policy
