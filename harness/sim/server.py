"""The simulator as an OpenAI-compatible HTTP server (aiohttp), bound to 127.0.0.1 only.

Endpoints: ``POST /v1/chat/completions`` (``n``, ``seed``, ``temperature``,
``max_tokens``; content-filter blocks come back as ``finish_reason: "content_filter"``),
``GET /v1/models``, ``POST /v1/moderations``, and the Files and Batch API (``/v1/files``,
``/v1/batches``: `harness.sim.batches`; ``batch_delay_s`` keeps a batch in progress).
Judge prompts are answered by `harness.sim.judge` (see `harness.sim.routing`).

Test hooks make infrastructure failures reproducible over real HTTP:

* ``status_sequence``: a list consumed one request at a time, e.g.
  ``["429:0.2", "500", "drop", "ok"]`` (429 with ``Retry-After: 0.2``, a 500, a dropped
  connection, then normal answers); after the list runs out every request is answered.
* header ``X-Sim-Fail: <token>`` on a request forces that failure for that request
  (same tokens: ``429[:seconds]``, ``500``, ``502``, ``503``, ``drop``, ``content_filter``,
  ``401``, ``403``, ``404``).
* ``fail_rate``: that share of requests fail with a 503 (seeded, so runs repeat).
* ``api_key``: when set, the Bearer token must equal it (401 otherwise); a Bearer header
  is always required.
* ``no_n``: reject ``n > 1`` with HTTP 400 (``param: "n"``), as some providers do; with
  ``no_n_status=500``, as llama.cpp's own server does ("Only one completion choice is
  allowed", HTTP 500, no ``param``).
* ``ignore_n``: answer one choice whatever ``n`` asks for, as llama.cpp's and Ollama's
  OpenAI-compatible servers do.
* ``rpm`` / ``tpm``: requests and tokens per minute on ``/v1/chat/completions``, refused with
  429 + ``Retry-After`` and OpenAI's ``x-ratelimit-*`` headers past them
  (`harness.sim.ratelimit`; batches have limits of their own at OpenAI, so none here).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiohttp import web

from harness.errors import InfrastructureError
from harness.sim.batches import add_routes
from harness.sim.model import PROFILES, FilterMode, SimModel
from harness.sim.moderation import moderate
from harness.sim.ratelimit import ServerRateLimit
from harness.sim.routing import respond
from harness.targets.ratelimit import estimate_tokens

HOST = "127.0.0.1"


@dataclass
class ServerConfig:
    """Settings of one simulator server."""

    profile: str = "vulnerable"
    as_of: date | None = None
    epoch: date | None = None
    latency_ms: float = 0.0
    api_key: str | None = None
    fail_rate: float = 0.0
    fail_seed: int = 0
    status_sequence: list[str] = field(default_factory=list)
    no_n: bool = False
    no_n_status: int = 400
    ignore_n: bool = False
    filter_mode: FilterMode = "refuse"
    batch_delay_s: float = 0.0
    """Seconds a batch stays `in_progress` before it is answered (`harness.sim.batches`)."""
    rpm: float | None = None
    tpm: float | None = None
    rate_burst_s: float = 1.0
    ratelimit_headers: bool = True


def _error_body(status: int, message: str, *, type_: str = "invalid_request_error",
                code: str | None = None, param: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _error(status: int, message: str, *, type_: str = "invalid_request_error",
           code: str | None = None, param: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    _, body = _error_body(status, message, type_=type_, code=code, param=param)
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=headers)


class _DropConnection(Exception):
    pass


class SimServer:
    """Request handlers and state (models per profile, failure hooks, counters)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._models: dict[str, SimModel] = {}
        self._sequence = list(config.status_sequence)
        self._fail_rng = random.Random(config.fail_seed)
        self.requests = 0
        self.last_messages: list[Any] = []  # the messages of the last chat request (tests)
        self.model(config.profile)  # fail early on a bad profile
        self.rate_limit = (ServerRateLimit(config.rpm, config.tpm, burst_s=config.rate_burst_s,
                                           headers=config.ratelimit_headers)
                           if config.rpm is not None or config.tpm is not None else None)

    def model(self, profile: str) -> SimModel:
        """The SimModel of a profile (built once)."""
        m = self._models.get(profile)
        if m is None:
            c = self.config
            m = SimModel(profile, c.as_of, c.epoch, filter_mode=c.filter_mode)
            self._models[profile] = m
        return m

    def resolve_profile(self, name: str) -> str | None:
        """Profile for a requested model name: sim, sim-<p>, sim:<p>, <p>, sim-drifting-2."""
        if name in ("sim", "", "sim-default", "sim-judge"):
            # sim-judge: judge requests are recognised by their content (harness.sim.judge),
            # so a judge configured with model "sim-judge" gets the simulated judge.
            return self.config.profile
        for prefix in ("sim-", "sim:"):
            if name.startswith(prefix):
                name = name[len(prefix):]
        if name.endswith("-2"):
            name = name[:-2]
        return name if name in PROFILES else None

    def _failure(self, token: str) -> web.Response | None:
        token = token.strip().lower()
        if token in ("", "ok", "200"):
            return None
        if token == "drop":
            raise _DropConnection()
        code, _, arg = token.partition(":")
        if code == "429":
            return _error(429, "Rate limit reached (simulated).", type_="rate_limit_error",
                          code="rate_limit_exceeded", headers={"Retry-After": arg or "1"})
        if code == "content_filter":
            return _error(400, "The prompt was filtered by the content policy (simulated).",
                          code="content_filter")
        if code in ("401", "403"):
            return _error(int(code), "Incorrect API key provided (simulated).",
                          code="invalid_api_key")
        if code == "404":
            return _error(404, "The model does not exist (simulated).", code="model_not_found")
        if code.isdigit():
            return _error(int(code), "The server had an error (simulated).", type_="server_error")
        return _error(400, f"unknown X-Sim-Fail token {token!r}")

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return _error(401, "Missing bearer token: send 'Authorization: Bearer <key>'.",
                          code="invalid_api_key")
        if self.config.api_key is not None and header[7:].strip() != self.config.api_key:
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        return None

    def _injected_failure(self, request: web.Request) -> web.Response | None:
        forced = request.headers.get("X-Sim-Fail")
        if forced:
            return self._failure(forced)
        if self._sequence:
            return self._failure(self._sequence.pop(0))
        if self.config.fail_rate > 0 and self._fail_rng.random() < self.config.fail_rate:
            return self._failure("503")
        return None

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        self.requests += 1
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        try:
            failure = self._injected_failure(request)
        except _DropConnection:
            return self._drop(request)
        if failure is not None:
            return failure
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return _error(400, "request body is not valid JSON")
        refused, limit_headers = self._admit(body)
        if refused is not None:
            return refused
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000.0)
        status, payload = self.answer_chat(body)
        return web.Response(status=status, text=json.dumps(payload),
                            content_type="application/json", headers=limit_headers or None)

    def _admit(self, body: Any) -> tuple[web.Response | None, dict[str, str]]:
        """(a 429 answer or None, the x-ratelimit-* headers) under --rpm/--tpm. A body that
        is not a chat request is left to `answer_chat` to refuse."""
        if self.rate_limit is None or not isinstance(body, dict) or \
                not isinstance(body.get("messages"), list):
            return None, {}
        try:
            n = int(body.get("n") or 1)
            max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        except (TypeError, ValueError):
            return None, {}
        chars = sum(len(str(m.get("content") or "")) for m in body["messages"]
                    if isinstance(m, dict))
        admitted, headers = self.rate_limit.admit(estimate_tokens(chars, max_tokens, n))
        if admitted:
            return None, headers
        return _error(429, "Rate limit reached for requests or tokens per minute (simulated).",
                      type_="requests", code="rate_limit_exceeded", headers=headers), headers

    def answer_chat(self, body: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of a `/chat/completions` request body: the answer or an
        OpenAI-style error. Shared by the HTTP endpoint and batch processing."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error_body(400, "'messages' must be a list of {role, content}",
                               param="messages")
        self.last_messages = body["messages"]
        model_name = str(body.get("model", "sim"))
        profile = self.resolve_profile(model_name)
        if profile is None:
            return _error_body(404, f"The model '{model_name}' does not exist. Known: sim, "
                               + ", ".join(f"sim-{p}" for p in PROFILES),
                               code="model_not_found")
        n = int(body.get("n") or 1)
        if n < 1 or n > 128:
            return _error_body(400, "'n' must be between 1 and 128", param="n")
        if n > 1 and self.config.no_n:
            if self.config.no_n_status == 500:
                return _error_body(500, "Only one completion choice is allowed",
                                   type_="server_error")
            return _error_body(400, "This endpoint does not support 'n' > 1.", param="n",
                               code="unsupported_parameter")
        if self.config.ignore_n:
            n = 1
        temperature = float(body.get("temperature", 1.0) if body.get("temperature")
                            is not None else 1.0)
        seed_raw = body.get("seed")
        seed = int(seed_raw) if seed_raw is not None else int.from_bytes(os.urandom(4), "big")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        model = self.model(profile)
        replies = respond(model, body["messages"], temperature=temperature, n=n, seed=seed,
                          max_tokens=int(max_tokens) if max_tokens else None)
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body["messages"]
                            if isinstance(m, dict)) // 4 + 1
        choices = []
        completion_tokens = 0
        for i, r in enumerate(replies):
            completion_tokens += len(r.text) // 4 + 1
            choices.append({
                "index": i,
                "message": {"role": "assistant", "content": None if r.blocked else r.text},
                "finish_reason": r.finish_reason,
                "logprobs": None,
            })
        return 200, {
            "id": f"chatcmpl-sim-{seed:x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.model_name,
            "system_fingerprint": model.system_fingerprint,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        # Close the socket without an answer: the client sees a dropped connection.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()

    async def models(self, request: web.Request) -> web.Response:
        """GET /v1/models."""
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        names = ["sim", "sim-judge", *(f"sim-{p}" for p in PROFILES)]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "harness"} for n in names]
        return web.json_response({"object": "list", "data": data})

    async def moderations(self, request: web.Request) -> web.Response:
        """POST /v1/moderations, delegating to `harness.sim.moderation.moderate`."""
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        body = await request.json()
        inputs = body.get("input", "")
        texts = inputs if isinstance(inputs, list) else [inputs]
        results: list[Any] = []
        for text in texts:
            results.extend(moderate(str(text))["results"])
        return web.json_response({"id": f"modr-sim-{self.requests}",
                                  "model": "sim-moderation", "results": results})


SIM_KEY = web.AppKey("sim", SimServer)


def make_app(config: ServerConfig) -> web.Application:
    """The aiohttp application (`app[SIM_KEY]` is the `SimServer`, for tests)."""
    server = SimServer(config)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIM_KEY] = server
    app.router.add_post("/v1/chat/completions", server.chat_completions)
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/moderations", server.moderations)
    add_routes(app, server)
    return app


async def start(config: ServerConfig, port: int = 0) -> tuple[web.AppRunner, int]:
    """Start serving on 127.0.0.1:`port` (0 = any free port); returns (runner, bound port)."""
    runner = web.AppRunner(make_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise _listen_error(exc, port) from None
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


def _listen_error(exc: OSError, port: int) -> InfrastructureError:
    """The one-line reason the simulator cannot listen on `port` (exit 4: the port number
    is valid, the machine refuses it), with what to do."""
    if exc.errno == errno.EADDRINUSE:
        return InfrastructureError(
            f"port {port} on {HOST} is in use (another server listens there); stop it, pick "
            "another --port, or give --port 0 for any free port")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InfrastructureError(
            f"no permission to listen on port {port} on {HOST} (ports below 1024 need root); "
            "pick a port of 1024 or above, or --port 0 for any free port")
    return InfrastructureError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}; "
                               "pick another --port, or --port 0 for any free port")


def serve_forever(config: ServerConfig, port: int,
                  announce: Callable[[str], None] = print) -> None:
    """Blocking: serve until interrupted; `announce` gets "listening on http://...:PORT/v1"."""

    async def main() -> None:
        runner, bound = await start(config, port)
        announce(f"listening on http://{HOST}:{bound}/v1")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
