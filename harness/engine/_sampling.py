"""Sampling: the worker pool that asks the target, labels answers and writes records."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from harness.detectors import DetectorPool, failed_detectors, label_sample, specs_for
from harness.detectors.base import DetectionInput, Detector
from harness.errors import (
    InfrastructureError,
    PartialAnswerError,
    TargetAuthError,
    TargetNotFoundError,
    TargetUnreachableError,
)
from harness.plan import WorkItem, derive_seed
from harness.progress import Progress
from harness.records import (
    Completion,
    CompletionRequest,
    Probe,
    SampleRecord,
    sha256_text,
)
from harness.store import (
    SampleWriter,
    utc_now,
)
from harness.suites import Suite
from harness.tally import Tally
from harness.targets.base import BatchItem, Target


class Pacer:
    """Spreads request starts evenly over time instead of letting them leave in bursts.

    With `concurrency` requests in flight and no request faster than `fastest` seconds,
    no client can start more than `concurrency / fastest` requests a second; the pacer
    enforces exactly that ceiling, one start every `fastest / concurrency` seconds, so it
    never lowers throughput below what the concurrency bound allows. What it removes are
    bursts: answers that arrive together (a slow moment on the endpoint, a pause of the
    event loop) would otherwise send their next requests together, get their answers
    together one latency later and queue behind each other on the event loop, cycle after
    cycle (docs/performance.md). Paced, they return as an even stream. Starts are not
    saved up while idle (a burst allowance of one), and until a latency has been seen the
    pacer does not wait at all.
    """

    def __init__(self, concurrency: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrency = max(1, concurrency)
        self.fastest = math.inf
        self._clock = clock
        self._next_start = 0.0

    @property
    def spacing_s(self) -> float:
        """Seconds between two request starts (0 until a latency has been observed)."""
        return 0.0 if math.isinf(self.fastest) else self.fastest / self.concurrency

    def observe(self, latency_s: float) -> None:
        """Record one request's latency (the fastest seen sets the spacing)."""
        if 0.0 < latency_s < self.fastest:
            self.fastest = latency_s

    def delay_s(self) -> float:
        """Reserve the next start slot; how long the caller must wait for it."""
        now = self._clock()
        slot = max(now, self._next_start)
        self._next_start = slot + self.spacing_s
        return slot - now

    async def wait(self) -> None:
        """Wait for this request's start slot."""
        delay = self.delay_s()
        if delay > 0:
            await asyncio.sleep(delay)


def work_request(suite: Suite, item: WorkItem) -> CompletionRequest:
    """The request a work item sends: its cell's conversation, `item.count` answers, the
    samples' own seeds (the first one goes with the request)."""
    cell = item.cell
    seeds = tuple(derive_seed(suite.seed, cell.key, item.start + j) for j in range(item.count))
    return CompletionRequest(cell.messages, cell.temperature, suite.max_tokens,
                             n=item.count, seed=seeds[0], sample_seeds=seeds)


def batch_items(suite: Suite, items: Iterable[WorkItem],
                split_first: bool = True) -> list[BatchItem]:
    """The work items as the requests of a batch job (`harness.targets.base.BatchTarget`),
    the first one split as `execute` splits it, so each line is a request the engine would
    send and a batch run answers as the synchronous run at the same seed does."""
    out: list[BatchItem] = []
    for i, item in enumerate(items):
        parts = [item]
        if i == 0 and split_first and item.count > 2:
            parts = [WorkItem(item.cell, item.start, 2),
                     WorkItem(item.cell, item.start + 2, item.count - 2)]
        out.extend(BatchItem(p.cell.key.as_str(), p.start, work_request(suite, p))
                   for p in parts)
    return out


def request_start(item: WorkItem, j: int, comp: Completion | None,
                  seeds: Sequence[int]) -> int:
    """The first sample index of the request that answered sample `j` of `item`: the item's
    start when its choices came in one request (or nothing says otherwise), the sample's own
    index when the target asked for it alone (its answer carries its own seed, e.g. after an
    endpoint refused `n`)."""
    if comp is not None and comp.seed_sent is not None and j > 0 and comp.seed_sent != seeds[0]:
        return item.start + j
    return item.start


class Sampler:
    """The state of one sampling pass while its workers sample; after it, `fatal` says why it
    stopped early (None: the plan was done)."""

    def __init__(self, suite: Suite, target: Target, writer: SampleWriter, tally: Tally,
                 run_id: str, progress: Progress, record_transform: Any, concurrency: int = 1,
                 pool: DetectorPool | None = None):
        self.suite = suite
        self.pool = pool if pool is not None else DetectorPool()
        self.target = target
        self.writer = writer
        self.tally = tally
        self.run_id = run_id
        self.progress = progress
        self.transform = record_transform
        self._detectors: dict[str, tuple[list[Detector], str]] = {}
        self.consecutive_failures = 0
        self.successes = 0
        self.fatal: BaseException | None = None
        self.n_error_requests = 0
        self.last_exception: InfrastructureError | None = None
        self.pending: list[WorkItem] = []
        self.pacer = Pacer(concurrency)

    def detectors_for(self, probe: Probe) -> tuple[list[Detector], str]:
        got = self._detectors.get(probe.id)
        if got is None:
            specs = specs_for(probe, self.suite.detectors)
            got = ([self.pool.build(s) for s in specs], probe.expect.combine)
            self._detectors[probe.id] = got
        return got

    async def worker(self, items: Iterator[WorkItem]) -> None:
        while self.fatal is None:
            if self.pending:
                item = self.pending.pop()
            else:
                got = next(items, None)
                if got is None:
                    return
                item = got
            if item.count > 1 and not self.target.supports_n:
                # The endpoint turned out not to take `n`: one sample now, the rest back
                # to the queue for the other workers (keeps `concurrency` requests busy).
                self.pending.append(WorkItem(item.cell, item.start + 1, item.count - 1))
                item = WorkItem(item.cell, item.start, 1)
            await self.do(item)

    async def do(self, item: WorkItem) -> None:
        cell = item.cell
        request = work_request(self.suite, item)
        seeds = request.sample_seeds
        await self.pacer.wait()
        t0 = time.monotonic()
        answers: list[Completion | None] = [None] * item.count
        error: str | None = None
        try:
            got: Sequence[Completion | None] = await self.target.complete(request)
        except (TargetAuthError, TargetNotFoundError) as exc:
            self.fatal = exc
            return
        except PartialAnswerError as exc:
            # Some answers came, the rest failed: keep every answer that came.
            got, error = exc.completions, str(exc)
            self.last_exception = exc
        except InfrastructureError as exc:
            got, error = (), str(exc)
            self.last_exception = exc
        latency = time.monotonic() - t0
        if error is None and len(got) != item.count:
            error = f"target returned {len(got)} answers for n={item.count}"
        for j, comp in enumerate(got[:item.count]):
            answers[j] = comp
        if all(a is None for a in answers):
            self.consecutive_failures += 1
            self.n_error_requests += 1
            # Nothing has ever worked and failures keep coming: the endpoint is down;
            # stop now rather than spend retries on every remaining sample.
            if self.successes == 0 and self.consecutive_failures >= 8:
                self.fatal = TargetUnreachableError(
                    f"{error}\n(no request has succeeded after "
                    f"{self.consecutive_failures} attempts; partial results are kept)")
                return
        else:
            self.consecutive_failures = 0
            self.successes += 1
            self.pacer.observe(latency)
        detectors, combine = self.detectors_for(cell.probe)
        key = cell.key.as_str()
        now = utc_now()
        cap = self.suite.max_response_chars
        for j in range(item.count):
            index = item.start + j
            comp = answers[j]
            results: tuple[Any, ...] = ()
            # An answer past the cap is cut before labelling and storage (a 10 MB answer
            # would otherwise be labelled and written whole, 12 of them 126 MB); its length
            # and hash stay the whole answer's, and the record says it was cut.
            text = comp.text if comp is not None else None
            capped = False
            if text is not None and len(text) > cap:
                text, capped = text[:cap], True
            if comp is None or text is None:
                outcome = "error"
            elif comp.blocked:
                outcome = "blocked"
            else:
                outcome, results = await label_sample(
                    detectors, DetectionInput(text, cell.probe, cell.context, cell.messages,
                                              comp.finish_reason), combine)  # type: ignore[arg-type]
            # A detector that failed is named in the record, not blamed on the target.
            rec_error = error if comp is None else failed_detectors(results)
            rec = SampleRecord(
                run_id=self.run_id, probe_id=cell.probe.id, parent_id=cell.probe.parent_id,
                family=cell.probe.family, mutators=cell.probe.mutators,
                category=cell.probe.category, severity=cell.probe.severity,
                context=cell.context.name, temperature=cell.temperature, sample_index=index,
                seed=seeds[j], messages=cell.messages,
                response=text,
                finish_reason=comp.finish_reason if comp is not None else None,
                outcome=outcome,  # type: ignore[arg-type]
                detectors=tuple(results),
                latency_s=round(comp.latency_s if comp and comp.latency_s is not None
                                else latency, 4),
                tokens_in=comp.tokens_in if comp else None,
                tokens_out=comp.tokens_out if comp else None,
                model=comp.model if comp else None,
                system_fingerprint=comp.system_fingerprint if comp else None,
                time=now, error=rec_error,
                response_sha256=sha256_text(comp.text) if comp is not None else None,
                response_chars=len(comp.text) if comp is not None else None,
                seed_sent=comp.seed_sent if comp is not None else None,
                attempt_s=(round(comp.attempt_s, 4) if comp is not None
                           and comp.attempt_s is not None else None),
                response_capped=capped,
                request_id=f"{key}#{request_start(item, j, comp, seeds)}",
            )
            d = rec.to_dict()
            self.tally.add(d)
            d = self.transform(d)
            self.writer.add(d)
        self.progress.advance(item.count)


async def execute(suite: Suite, target: Target, items: Iterator[WorkItem], writer: SampleWriter,
                  tally: Tally, run_id: str, progress: Progress, transform: Any,
                  concurrency: int, pool: DetectorPool, split_first: bool = True) -> Sampler:
    """Sample every work item against `target` with `concurrency` workers, label with the
    detectors of `pool` (the caller owns and closes it), count and write each record.
    Returns the sampler; its `fatal` is set when sampling had to stop.

    `split_first=False` sends the first item whole (still alone): a shard whose first cell
    is not the plan's first must batch it as the unsharded run does, since with `n`
    batching a batch's answers follow from its first sample's seed."""
    runner = Sampler(suite, target, writer, tally, run_id, progress, transform, concurrency,
                     pool)
    # One request first, alone: the target learns whether the endpoint accepts `n` before
    # the workers plan their batches (otherwise every worker would hold a rejected batch).
    first = next(items, None)
    if first is None:
        return runner
    if split_first and first.count > 2:
        runner.pending.append(WorkItem(first.cell, first.start + 2, first.count - 2))
        first = WorkItem(first.cell, first.start, 2)
    await runner.do(first)
    if runner.fatal is None and runner.successes == 0 and \
            isinstance(runner.last_exception, TargetUnreachableError):
        # The first request, sent alone, found no working endpoint after its retries: every
        # other request would fail the same way, so stop now with that one message.
        runner.fatal = TargetUnreachableError(
            f"{runner.last_exception}\n(the run's first request failed; partial results are "
            "kept)")
    if runner.fatal is not None:
        return runner
    # Everything alive now (imported modules, the suite, the client and the modules its
    # first request imported) lives until the end of sampling: move it out of the garbage
    # collector's view, so the periodic full collections walk only what sampling creates
    # (in a `harness run` against HTTP, ~140,000 objects before, ~20,000 after; each full
    # collection stalled the event loop, docs/performance.md). Undone when sampling ends.
    gc.collect()
    gc.freeze()
    # The workers start together; the pacer (fed the first request's latency) spreads their
    # requests over one latency instead of sending them as one burst.
    workers = [asyncio.create_task(runner.worker(items)) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        writer.flush()
        gc.unfreeze()
    return runner
