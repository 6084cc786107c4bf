"""A local OpenAI-compatible HTTP server for detector tests (real sockets, real client).

Mounts the same pure functions the simulator's server uses (`harness.sim.moderation`,
`harness.sim.judge`), plus knobs for failures: a queue of canned statuses/replies.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.detectors import DetectorContext
from harness.sim.judge import is_judge_request, judge_reply
from harness.sim.moderation import moderate


@dataclass
class ServerState:
    """What the server did and what it should do next."""

    judge_error_rate: float = 0.0
    statuses: list[int] = field(default_factory=list)  # next responses' HTTP statuses
    canned_replies: list[str] = field(default_factory=list)  # next judge reply texts
    api_key: str | None = None
    n_chat: int = 0
    n_moderation: int = 0
    seen_temperatures: list[float] = field(default_factory=list)


def _fail(state: ServerState) -> web.Response | None:
    if state.statuses:
        status = state.statuses.pop(0)
        if status != 200:
            headers = {"retry-after-ms": "1"} if status == 429 else {}
            return web.json_response({"error": {"message": f"injected {status}"}},
                                     status=status, headers=headers)
    return None


def _auth(state: ServerState, request: web.Request) -> web.Response | None:
    if state.api_key and request.headers.get("Authorization") != f"Bearer {state.api_key}":
        return web.json_response({"error": {"message": "bad key"}}, status=401)
    return None


def make_app(state: ServerState) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        if (r := _auth(state, request)) or (r := _fail(state)):
            return r
        body = await request.json()
        state.n_chat += 1
        state.seen_temperatures.append(float(body.get("temperature", 1.0)))
        messages = body["messages"]
        if state.canned_replies:
            text = state.canned_replies.pop(0)
        elif is_judge_request(messages):
            text = judge_reply(messages, body.get("seed"), error_rate=state.judge_error_rate)
        else:
            text = "I can't help with that."
        return web.json_response({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    async def moderations(request: web.Request) -> web.Response:
        if (r := _auth(state, request)) or (r := _fail(state)):
            return r
        body = await request.json()
        state.n_moderation += 1
        text = body["input"] if isinstance(body["input"], str) else body["input"][0]
        return web.json_response(moderate(text, model=body.get("model", "sim-moderation")))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/moderations", moderations)
    return app


@asynccontextmanager
async def serve(state: ServerState) -> AsyncIterator[str]:
    """Run the app on 127.0.0.1 on a free port; yields the base URL (…/v1)."""
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def dumps(obj: Any) -> str:
    return json.dumps(obj)


def fast_context() -> DetectorContext:
    """A detector context whose retry policy waits milliseconds (detectors over HTTP in
    tests: the failures they retry are injected)."""
    from harness.targets.retry import RetryPolicy

    return DetectorContext(RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.005,
                                       max_total_s=5.0, max_retry_after_s=0.01))


def run_closing_clients(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` in a fresh event loop. Each detector owns its target's HTTP client (bound
    to the loop that opened it), so the coroutine closes the detectors it made."""
    return asyncio.run(coro)
