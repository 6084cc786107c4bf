"""A fault-injecting OpenAI-compatible server for tests: real HTTP on 127.0.0.1 (aiohttp).

`FaultServer(fault)` serves `POST /v1/chat/completions` and misbehaves as `fault` says:

    ok                 a well-formed completion (content `answer`, model `model`)
    echo_key           echoes the request's API key in every string an endpoint sends back:
                       content, refusal, tool calls, model, id, fingerprint, finish reason,
                       usage, headers, a 400 error body and a malformed answer
    message_string     `message` is a string, not an object
    content_list       `content` is a list of parts
    choices_dict       `choices` is an object, not a list
    usage_text         non-numeric `usage` counts
    not_json           a 200 whose body is not JSON
    retry_after_soon   429 with `Retry-After: soon` (then ok)
    slowloris          headers at once, then one byte every `drip_s` seconds, never finishing
    slow               a well-formed completion after `delay_s`
    timings            `slow`, and the body carries llama.cpp's `timings` (prompt_ms 12.5,
                       predicted_ms 87.5: 0.1 s of compute the server reports)
    outage             503 for the first `outage_requests` requests, then ok
    huge               a completion of `huge_chars` characters
    escape_model       a model name carrying terminal escape sequences

Runs its own event loop in a daemon thread, so tests can drive the CLI in a subprocess
against it. Use as a context manager. `reject_n=True` answers 400 to any `n > 1` (one
sample a request from then on).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web


class FaultServer:
    """See the module docstring."""

    def __init__(self, fault: str = "ok", *, content: str = "I can't help with that.",
                 model: str = "fault-model", drip_s: float = 2.0, delay_s: float = 0.0,
                 outage_requests: int = 0, huge_chars: int = 1_000_000,
                 reject_n: bool = False) -> None:
        self.fault = fault
        self.content = content
        self.model = model
        self.drip_s = drip_s
        self.delay_s = delay_s
        self.outage_requests = outage_requests
        self.huge_chars = huge_chars
        self.reject_n = reject_n
        self.requests = 0
        self.keys: list[str] = []
        self.queries: list[dict[str, str]] = []
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FaultServer:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> int:
        app = web.Application(client_max_size=8 * 2**20)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ answers

    def _completion(self, n: int, *, content: Any = None, model: str | None = None,
                    message: Any = None, usage: Any = None, finish: str = "stop",
                    fingerprint: str = "fp-1") -> dict[str, Any]:
        msg = message if message is not None else {
            "role": "assistant", "content": self.content if content is None else content}
        return {
            "id": "cmpl-1", "object": "chat.completion", "created": 0,
            "model": model or self.model, "system_fingerprint": fingerprint,
            "choices": [{"index": i, "message": msg, "finish_reason": finish}
                        for i in range(n)],
            "usage": usage if usage is not None else {"prompt_tokens": 5,
                                                      "completion_tokens": 3 * n},
        }

    def _echo_key(self, number: int, n: int, key: str) -> web.StreamResponse:
        """Every string an endpoint sends back carries the request's key: content, refusal,
        tool calls, model, id, system_fingerprint, finish_reason, usage, headers, and the
        error bodies of a rejected request and of a malformed answer."""
        headers = {"X-Request-Id": key, "openai-organization": f"org-{key}",
                   "WWW-Authenticate": f"Bearer realm={key}"}
        if number % 4 == 0:
            return web.json_response(
                {"error": {"message": f"bad request from key {key}", "type": key,
                           "param": key, "code": key}}, status=400, headers=headers)
        doc = _echo_key_doc(self, n, key)
        if number % 4 == 3:
            doc["usage"]["completion_tokens"] = key  # malformed: names the field
        return web.json_response(doc, headers=headers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        number = self.requests
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        self.keys.append(key)
        self.queries.append(dict(request.query))
        body = await request.json()
        n = int(body.get("n") or 1)
        fault = self.fault
        if self.reject_n and n > 1:
            return web.json_response({"error": {"message": "n must be 1", "param": "n"}},
                                     status=400)
        if fault == "echo_key":
            return self._echo_key(number, n, key)
        if fault == "message_string":
            return web.json_response(self._completion(n, message="just a string"))
        if fault == "content_list":
            return web.json_response(self._completion(
                n, content=[{"type": "text", "text": "part"}]))
        if fault == "choices_dict":
            doc = self._completion(n)
            doc["choices"] = {"0": doc["choices"][0]}
            return web.json_response(doc)
        if fault == "usage_text":
            return web.json_response(self._completion(
                n, usage={"prompt_tokens": "many", "completion_tokens": {"a": 1}}))
        if fault == "not_json":
            return web.Response(text="<html>hello</html>", content_type="application/json")
        if fault == "retry_after_soon" and number <= 2:
            return web.json_response({"error": {"message": "slow down"}}, status=429,
                                     headers={"Retry-After": "soon"})
        if fault == "slowloris":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            while not self._stopping.is_set():
                try:
                    await resp.write(b" ")
                except (ConnectionError, RuntimeError):
                    break
                await asyncio.sleep(self.drip_s)
            return resp
        if fault in ("slow", "timings") and self.delay_s:
            await asyncio.sleep(self.delay_s)
        if fault == "timings":
            return web.json_response({**self._completion(n),
                                      "timings": {"prompt_ms": 12.5, "predicted_ms": 87.5}})
        if fault == "outage" and number <= self.outage_requests:
            return web.json_response({"error": {"message": "down"}}, status=503)
        if fault == "huge":
            return web.json_response(self._completion(n, content="x" * self.huge_chars))
        if fault == "escape_model":
            return web.json_response(self._completion(n, model="evil\x1b[2J\x1b]0;pwned\x07"))
        return web.json_response(self._completion(n))


def _echo_key_doc(server: FaultServer, n: int, key: str) -> dict[str, Any]:
    doc = server._completion(n, message={
        "role": "assistant", "content": f"Your key is {key}. Sure: {key}", "refusal": key,
        "tool_calls": [{"id": f"call-{key}", "type": "function",
                        "function": {"name": f"leak_{key}",
                                     "arguments": json.dumps({"key": key})}}]},
        model=f"m-{key}", fingerprint=key, finish=f"stop-{key}")
    doc["id"] = f"cmpl-{key}"
    doc["usage"]["completion_tokens_details"] = {"note": key}
    return doc


def dumps(obj: Any) -> str:
    """Compact JSON (for building bodies in tests)."""
    return json.dumps(obj, separators=(",", ":"))
