"""The simulator's Files and Batch API (`/v1/files`, `/v1/batches`), as OpenAI serves them.

So `openai-batch:<model>` is tested over real HTTP with the official `openai` client.
Files live in memory. A batch goes `validating` -> `in_progress`, stays there for
`ServerConfig.batch_delay_s` (so a client sees it running, and a test can stop the client
while it waits), then answers every line with the same code as `/v1/chat/completions`
(`SimServer.answer_chat`) and ends `completed`: answers with HTTP 200 in the output file,
the others (400, 404, ...) in the error file, in OpenAI's line format
(`{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`).
An input that is not batch JSONL for `/v1/chat/completions` ends the batch `failed` with
`errors` naming the line, as OpenAI's validation does. A batch cancelled before it is
answered ends `cancelled` with no output.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from harness.sim.server import SimServer

CHAT_URL = "/v1/chat/completions"


def _error(status: int, message: str, *, code: str | None = None,
           param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param,
                      "code": code}}
    return web.json_response(body, status=status)


@dataclass
class StoredFile:
    """One uploaded or produced file."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.content),
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed"}


class BatchService:
    """Files and batches of one simulator server (state in memory)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # ----------------------------------------------------------------- files

    def _store(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(f"file-sim{secrets.token_hex(8)}", filename, purpose, content)
        self.files[stored.id] = stored
        return stored

    async def upload(self, request: web.Request) -> web.Response:
        """POST /v1/files (multipart: `file`, `purpose`)."""
        denied = self.server._check_auth(request)
        if denied is not None:
            return denied
        form = await request.post()
        upload = form.get("file")
        purpose = str(form.get("purpose") or "")
        if not isinstance(upload, web.FileField):
            return _error(400, "'file' must be an uploaded file", param="file")
        if purpose not in ("batch", "fine-tune", "assistants", "user_data"):
            return _error(400, f"'purpose' {purpose!r} is not supported", param="purpose")
        stored = self._store(upload.filename or "upload", purpose, upload.file.read())
        return web.json_response(stored.to_dict())

    def _file(self, request: web.Request) -> StoredFile | web.Response:
        denied = self.server._check_auth(request)
        if denied is not None:
            return denied
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            return _error(404, f"No such File object: {request.match_info['file_id']}",
                          param="id")
        return stored

    async def retrieve_file(self, request: web.Request) -> web.Response:
        """GET /v1/files/{file_id}."""
        got = self._file(request)
        return got if isinstance(got, web.Response) else web.json_response(got.to_dict())

    async def file_content(self, request: web.Request) -> web.Response:
        """GET /v1/files/{file_id}/content: the raw bytes."""
        got = self._file(request)
        if isinstance(got, web.Response):
            return got
        return web.Response(body=got.content, content_type="application/octet-stream")

    # ----------------------------------------------------------------- batches

    async def create(self, request: web.Request) -> web.Response:
        """POST /v1/batches."""
        denied = self.server._check_auth(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be an object")
        input_id = str(body.get("input_file_id") or "")
        if input_id not in self.files or self.files[input_id].purpose != "batch":
            return _error(400, f"input_file_id {input_id!r} is not an uploaded file with "
                          "purpose 'batch'", param="input_file_id")
        if body.get("endpoint") != CHAT_URL:
            return _error(400, f"endpoint must be {CHAT_URL} (simulator)", param="endpoint")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'", param="completion_window")
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": f"batch_sim{secrets.token_hex(8)}", "object": "batch", "endpoint": CHAT_URL,
            "errors": None, "input_file_id": input_id, "completion_window": "24h",
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": now, "in_progress_at": None, "expires_at": now + 86400,
            "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch["id"]] = batch
        self._tasks[batch["id"]] = asyncio.create_task(self._process(batch))
        return web.json_response(batch)

    def _batch(self, request: web.Request) -> dict[str, Any] | web.Response:
        denied = self.server._check_auth(request)
        if denied is not None:
            return denied
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, f"No batch found with id '{request.match_info['batch_id']}'.",
                          param="batch_id")
        return batch

    async def retrieve(self, request: web.Request) -> web.Response:
        """GET /v1/batches/{batch_id}."""
        got = self._batch(request)
        return got if isinstance(got, web.Response) else web.json_response(got)

    async def list_batches(self, request: web.Request) -> web.Response:
        """GET /v1/batches (newest first; every batch, no paging)."""
        denied = self.server._check_auth(request)
        if denied is not None:
            return denied
        data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    async def cancel(self, request: web.Request) -> web.Response:
        """POST /v1/batches/{batch_id}/cancel: a batch not yet answered ends cancelled."""
        got = self._batch(request)
        if isinstance(got, web.Response):
            return got
        if got["status"] in ("validating", "in_progress"):
            task = self._tasks.get(got["id"])
            if task is not None:
                task.cancel()
            now = int(time.time())
            got.update(status="cancelled", cancelling_at=now, cancelled_at=now)
        return web.json_response(got)

    async def _process(self, batch: dict[str, Any]) -> None:
        lines, problem = _parse_input(self.files[batch["input_file_id"]].content)
        if problem is not None:
            batch.update(status="failed", failed_at=int(time.time()),
                         errors={"object": "list", "data": [problem]})
            return
        batch.update(status="in_progress", in_progress_at=int(time.time()),
                     request_counts={"total": len(lines), "completed": 0, "failed": 0})
        started = time.monotonic()
        # Read each time round: a test may shorten the delay of a batch already waiting.
        while time.monotonic() - started < self.server.config.batch_delay_s:
            await asyncio.sleep(0.02)
        batch.update(status="finalizing", finalizing_at=int(time.time()))
        try:
            self._answer(batch, lines)
        except Exception as exc:  # a simulator bug must show as a failed batch, not a hang
            batch.update(status="failed", failed_at=int(time.time()), errors={
                "object": "list", "data": [{"code": "server_error", "line": None,
                                            "param": None, "message": repr(exc)}]})

    def _answer(self, batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        out: list[str] = []
        errors: list[str] = []
        for line in lines:
            status, payload = self.server.answer_chat(line["body"])
            result = {"id": f"batch_req_{secrets.token_hex(6)}", "custom_id": line["custom_id"],
                      "response": {"status_code": status,
                                   "request_id": f"req_{secrets.token_hex(6)}",
                                   "body": payload},
                      "error": None}
            (out if status == 200 else errors).append(json.dumps(result))
        name = batch["id"]
        if out:
            batch["output_file_id"] = self._store(f"{name}_output.jsonl", "batch_output",
                                                  ("\n".join(out) + "\n").encode()).id
        if errors:
            batch["error_file_id"] = self._store(f"{name}_error.jsonl", "batch_output",
                                                 ("\n".join(errors) + "\n").encode()).id
        batch.update(status="completed", completed_at=int(time.time()),
                     request_counts={"total": len(lines), "completed": len(out),
                                     "failed": len(errors)})


def _parse_input(content: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The lines of a batch input file, or the first problem as an OpenAI batch error."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            return [], {"code": "invalid_json_line", "line": number,
                        "message": "This line is not parseable as valid JSON.", "param": None}
        if not isinstance(obj, dict) or not isinstance(obj.get("body"), dict) or \
                not isinstance(obj.get("custom_id"), str):
            return [], {"code": "invalid_request", "line": number, "param": None,
                        "message": "Each line needs custom_id (a string), method, url and "
                                   "body (an object)."}
        if obj.get("method") != "POST" or obj.get("url") != CHAT_URL:
            return [], {"code": "invalid_url", "line": number, "param": "url",
                        "message": f"Only POST {CHAT_URL} is supported."}
        if obj["custom_id"] in seen:
            return [], {"code": "duplicate_custom_id", "line": number, "param": "custom_id",
                        "message": f"custom_id {obj['custom_id']!r} is used twice."}
        seen.add(obj["custom_id"])
        lines.append(obj)
    if not lines:
        return [], {"code": "empty_file", "line": None, "param": None,
                    "message": "The input file has no requests."}
    return lines, None


BATCHES_KEY = web.AppKey("batches", BatchService)


def add_routes(app: web.Application, server: SimServer) -> BatchService:
    """Serve the Files and Batch API on `app` (`app[BATCHES_KEY]` is the service, for tests)."""
    service = BatchService(server)
    app[BATCHES_KEY] = service
    app.router.add_post("/v1/files", service.upload)
    app.router.add_get("/v1/files/{file_id}", service.retrieve_file)
    app.router.add_get("/v1/files/{file_id}/content", service.file_content)
    app.router.add_post("/v1/batches", service.create)
    app.router.add_get("/v1/batches", service.list_batches)
    app.router.add_get("/v1/batches/{batch_id}", service.retrieve)
    app.router.add_post("/v1/batches/{batch_id}/cancel", service.cancel)
    return service
