"""`openai-batch:<model>`: the whole plan as OpenAI Batch API jobs, through the official client.

The run hands the target every request first (`prepare`): it writes them as Batch JSONL
(`batch-input-<k>.jsonl` in the run folder, one line per request, `custom_id` = cell key and
first sample index; the same file `vllm run-batch -i` reads), uploads it (`/v1/files`,
purpose `batch`), creates the batch (`/v1/batches`, 24 h window) and records the batch id in
`batch.json` in the run folder *before* it polls. It polls with tenacity (first after
`BatchPoll.first_s`, doubling to at most `BatchPoll.max_s`), downloads the output and error
files and keeps each sample's answer; the engine then asks `complete` for each request as
for any target and labels the answers through the normal path.

After a crash or Ctrl-C, `harness run --resume` on the folder reads `batch.json` and picks the
recorded batches up instead of submitting again (a batch is submitted with a
`harness_submission` metadata token, so even one created just before the crash, whose id
was not yet recorded, is found by listing the batches). Only samples no recorded batch
covers are submitted anew; a batch whose answers were all recorded (`consumed`) is not read
again, so samples that ended in error are asked for in a new batch on resume.

Uploads, creation and downloads go through the one retry policy (`harness.targets.retry`);
the API key is read as for `openai:` and never written anywhere.
"""

from __future__ import annotations

import io
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jsonlines
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from harness.errors import (
    InfrastructureError,
    TargetAuthError,
    TargetNotFoundError,
    UsageError,
)
from harness.privacy import register_url, scrub_url
from harness.records import Completion
from harness.store import utc_now, write_private_text
from harness.targets._batch_answers import STATE_FILE, BatchAnswers
from harness.targets._batch_files import (
    CHAT_URL,
    LineAnswer,
    answers_by_sample,
    chunk_lines,
    input_line,
    read_line,
)
from harness.targets.base import BatchItem, TargetOptions
from harness.targets.openai_wire import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_BASE_URL,
    read_api_key,
    request_body,
    split_base_url,
)
from harness.targets.retry import (
    RetryPolicy,
    TargetRequestError,
    call_with_retries,
    is_retryable,
)

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class BatchPoll:
    """The polling schedule: `first_s`, then doubling up to `max_s` between two looks, for at
    most `max_wait_s` in all (OpenAI's completion window is 24 h; an hour more for it to
    finalise). Transient errors of a look (429, 5xx, dropped connections) are waited out
    on the same schedule."""

    first_s: float = 0.5
    max_s: float = 60.0
    max_wait_s: float = 25 * 3600.0


class OpenAIBatchTarget(BatchAnswers):
    """`openai-batch:<model>`: sampled through the Batch API (`/v1/files`, `/v1/batches`)."""

    supports_n = True

    def __init__(self, model: str, *, base_url: str | None = None,
                 api_key_env: str | None = None, poll: BatchPoll | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        if not model:
            raise UsageError("target 'openai-batch:' needs a model name, e.g. "
                             "openai-batch:gpt-4o-mini")
        self.model = model
        self.name = f"openai-batch:{model}"
        register_url(base_url)
        self.display_url = scrub_url((base_url or DEFAULT_BASE_URL).rstrip("/"))
        self.base_url, self._query = split_base_url(base_url or DEFAULT_BASE_URL)
        self.api_key_env = api_key_env or DEFAULT_API_KEY_ENV
        self.poll = poll or BatchPoll()
        self.retry_policy = retry_policy or RetryPolicy()
        self._key = read_api_key(self.api_key_env, self.base_url)
        self._client: openai.AsyncOpenAI | None = None
        self._rng = random.Random()
        super().__init__()

    def __repr__(self) -> str:
        return f"OpenAIBatchTarget(model={self.model!r}, base_url={self.base_url!r})"

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(api_key=self._key, base_url=self.base_url,
                                              default_query=self._query or None,
                                              max_retries=0, timeout=120.0)
        return self._client

    def describe(self) -> dict[str, object]:
        """Settings and the batches used, for the manifest; never the key."""
        return {
            "kind": "openai-batch",
            "name": self.name,
            "model": self.model,
            "base_url": self.display_url,
            "api_key_env": self.api_key_env,
            "n_batching": True,
            "state_file": STATE_FILE,
            "batches": [{k: b.get(k) for k in ("id", "status", "request_counts", "input_file")}
                        for b in self._state["batches"]],
        }

    async def aclose(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ----------------------------------------------------------------- the BatchTarget protocol

    async def prepare(self, items: Sequence[BatchItem], run_dir: Path,
                      notify: Callable[[str], None]) -> None:
        """Submit (or pick up) the batches that answer `items`, wait for them and keep the
        answers. Raises InfrastructureError when the endpoint or a batch fails."""
        self._open(items, run_dir)
        if not items:
            return
        await self._adopt_unrecorded(notify)
        pending = self._pending()
        new = self._uncovered(items, pending)
        if pending:
            notify(f"picking up {len(pending)} batch(es) recorded in {self._state_path}: "
                   + ", ".join(b["id"] for b in pending))
        if new:
            pending.extend(await self._submit(new, run_dir, notify))
        for entry in pending:
            batch = await self._wait(entry, notify)
            self._used.append(entry["id"])
            self._answers.update(await self._collect(entry, batch))
            self._save()

    # ----------------------------------------------------------------- steps

    async def _call(self, fn: Callable[[], Any]) -> Any:
        """One API call under the retry policy, with auth and 404 errors said plainly."""
        try:
            return await call_with_retries(fn, policy=self.retry_policy, where=self.base_url,
                                           rng=self._rng)
        except openai.APIStatusError as exc:
            raise self._plain(exc) from None

    def _plain(self, exc: openai.APIStatusError) -> InfrastructureError:
        """The harness error for an error answer that is not retried."""
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return TargetAuthError(
                f"the endpoint {self.base_url} rejected the API key from ${self.api_key_env} "
                f"(HTTP {exc.status_code}); check that ${self.api_key_env} holds a valid key "
                "that may use the Batch API.")
        if isinstance(exc, openai.NotFoundError):
            return TargetNotFoundError(
                f"{self.base_url} answered 404 to a Files/Batch API call; check that "
                "--base-url ends with the API root (usually /v1) and that the endpoint serves "
                "/v1/files and /v1/batches (vLLM's server does not: use `vllm run-batch` with "
                "the batch-input-*.jsonl file instead).")
        return TargetRequestError(f"{self.base_url} rejected a Batch API call (HTTP "
                                  f"{exc.status_code}): {exc.message}")

    async def _submit(self, items: Sequence[BatchItem], run_dir: Path,
                      notify: Callable[[str], None]) -> list[dict[str, Any]]:
        client = self._get_client()
        buffer = io.StringIO()
        sizes: list[int] = []
        lines = [input_line(it, self.model, request_body) for it in items]
        with jsonlines.Writer(buffer, compact=True) as writer:
            for line in lines:
                before = buffer.tell()
                writer.write(line)
                sizes.append(buffer.tell() - before)
        text = buffer.getvalue()
        entries: list[dict[str, Any]] = []
        offset = 0
        for part in chunk_lines(lines, sizes):
            k = len(self._state["batches"]) + 1
            length = sum(sizes[i] for i in part)
            chunk = text[offset:offset + length]
            offset += length
            name = f"batch-input-{k}.jsonl"
            write_private_text(run_dir / name, chunk)
            token = secrets.token_hex(8)
            entry: dict[str, Any] = {
                "id": None, "submission": token, "input_file": name, "input_file_id": None,
                "submitted": None, "status": None, "request_counts": None, "consumed": False,
                "requests": [[lines[i]["custom_id"], items[i].cell_key, items[i].start,
                              items[i].request.n, items[i].request.seed] for i in part],
            }
            self._state["batches"].append(entry)
            self._save()
            data = chunk.encode("utf-8")
            uploaded = await self._call(partial(
                client.files.create, file=(name, data, "application/jsonl"), purpose="batch"))
            entry["input_file_id"] = uploaded.id
            self._save()
            batch = await self._call(partial(
                client.batches.create, input_file_id=uploaded.id, endpoint=CHAT_URL,
                completion_window="24h",
                metadata={"harness_run": run_dir.name, "harness_submission": token}))
            entry.update(id=batch.id, submitted=utc_now(), status=batch.status)
            self._save()  # recorded before any polling: a crash from here on resumes it
            notify(f"submitted batch {batch.id} ({len(part):,} requests) to "
                   f"{self.display_url}; recorded in {self._state_path}")
            entries.append(entry)
        return entries

    async def _adopt_unrecorded(self, notify: Callable[[str], None]) -> None:
        """Entries whose batch was created but whose id was not recorded (a crash in
        between): find the batch by its submission token, or forget the entry."""
        lost = [b for b in self._state["batches"] if not b.get("id")]
        if not lost:
            return
        found: dict[str, Any] = {}
        if any(b.get("input_file_id") for b in lost):
            client = self._get_client()

            async def listing() -> list[Any]:
                return [b async for b in client.batches.list(limit=100)]
            for listed in await self._call(listing):
                token = (listed.metadata or {}).get("harness_submission")
                if token:
                    found[token] = listed
        for entry in lost:
            match = found.get(entry["submission"])
            if match is None:
                self._state["batches"].remove(entry)  # never created: submitted again
            else:
                entry.update(id=match.id, status=match.status, submitted=utc_now())
                notify(f"found batch {match.id}, created before the interruption")
        self._save()

    async def _wait(self, entry: dict[str, Any], notify: Callable[[str], None]) -> Any:
        client = self._get_client()
        last: list[str] = [""]

        def report(state: RetryCallState) -> None:
            if state.outcome is None or state.outcome.failed:
                return
            batch = state.outcome.result()
            counts = batch.request_counts
            line = f"batch {batch.id}: {batch.status}" + (
                f", {counts.completed + counts.failed:,}/{counts.total:,} requests done"
                if counts is not None and counts.total else "")
            entry.update(status=batch.status)
            if line != last[0]:
                notify(line)
                last[0] = line

        poll = self.poll
        retrying = AsyncRetrying(
            retry=(retry_if_result(lambda b: b.status not in TERMINAL)
                   | retry_if_exception(is_retryable)),
            wait=wait_exponential(multiplier=poll.first_s, max=poll.max_s),
            stop=stop_after_delay(poll.max_wait_s),
            before_sleep=report, reraise=False)
        try:
            batch: Any = await retrying(client.batches.retrieve, entry["id"])
        except RetryError as exc:
            last_try = exc.last_attempt
            what = (f"still {last_try.result().status}" if not last_try.failed
                    else f"unreachable ({last_try.exception()})")
            raise InfrastructureError(
                f"batch {entry['id']} is {what} after {poll.max_wait_s:g} s of polling; it "
                f"stays recorded in {self._state_path}: resume later with harness run "
                "--resume on the run folder") from None
        except openai.APIStatusError as exc:  # not retried: 401, 404, ...
            raise self._plain(exc) from None
        counts = batch.request_counts
        entry.update(status=batch.status,
                     request_counts=counts.model_dump() if counts is not None else None)
        self._save()
        notify(f"batch {batch.id}: {batch.status}")
        if batch.status == "failed":
            entry["consumed"] = True  # nothing to read; a resume submits again
            self._save()
            problems = [f"line {e.line}: {e.message}" if e.line else str(e.message)
                        for e in ((batch.errors.data or []) if batch.errors else [])]
            raise TargetRequestError(
                f"batch {batch.id} failed at {self.display_url}: "
                + ("; ".join(problems[:3]) or "no reason given")
                + f" (input: {entry['input_file']} in the run folder)")
        return batch

    async def _collect(self, entry: dict[str, Any],
                       batch: Any) -> dict[tuple[str, int], Completion | str]:
        client = self._get_client()
        sent = {r[0]: (int(r[3]), r[4]) for r in entry["requests"]}
        where = f"batch {batch.id}"
        lines: list[LineAnswer] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            got = await self._call(partial(client.files.content, file_id))
            reader = jsonlines.Reader(io.BytesIO(got.content))
            for obj in reader.iter(skip_empty=True, skip_invalid=True):
                cid = obj.get("custom_id") if isinstance(obj, dict) else None
                n, seed = sent.get(cid, (1, None))
                lines.append(read_line(obj, n=n, seed_sent=seed, where=where))
        return answers_by_sample(entry["requests"], lines,
                                 missing=f"{where} ({batch.status})")


def build(argument: str, options: TargetOptions) -> OpenAIBatchTarget:
    """Target kind `openai-batch:<model>` (registry factory): OpenAI's Batch API."""
    if not argument:
        raise UsageError("target 'openai-batch:' needs a model name after 'openai-batch:', "
                         "e.g. openai-batch:gpt-4o-mini")
    if options.rpm or options.tpm:  # the Batch API has limits of its own
        raise UsageError("--rpm/--tpm pace openai:<model> requests, not batches: drop them")
    return OpenAIBatchTarget(argument, base_url=options.option("base_url"),
                             api_key_env=options.option("api_key_env"),
                             retry_policy=options.retry_policy)
