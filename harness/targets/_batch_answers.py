"""What the batch targets share: the run folder's `batch.json`, and answers kept per sample.

A batch target (`harness.targets.base.BatchTarget`) collects every sample's answer in
`prepare`; the engine then asks `complete` request by request. `BatchAnswers` keeps those
answers keyed by (cell key, sample index), finds a request's samples by their seeds, and
records in `batch.json` which batches a session read (`consumed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import PartialAnswerError, UsageError
from harness.records import Completion, CompletionRequest
from harness.store import read_json, write_json
from harness.targets.base import BatchItem
from harness.targets.retry import TargetRequestError

STATE_FILE = "batch.json"


class BatchAnswers:
    """The answer store and state file of one batch target (a base class)."""

    name: str

    def __init__(self) -> None:
        self._state_path: Path | None = None
        self._state: dict[str, Any] = {"batches": []}
        self._used: list[str] = []  # ids of the batches this session read
        self._answers: dict[tuple[str, int], Completion | str] = {}
        self._sample_of_seed: dict[int, tuple[str, int]] = {}
        self._prepared = False

    def _open(self, items: Sequence[BatchItem], run_dir: Path) -> None:
        """Read the run folder's state and index this session's samples by seed."""
        self._state_path = run_dir / STATE_FILE
        if self._state_path.exists():
            self._state = read_json(self._state_path)
        for item in items:
            for j in range(item.request.n):
                seed = item.request.seed_of(j)
                if seed is not None:
                    self._sample_of_seed[seed] = (item.cell_key, item.start + j)
        self._prepared = True

    def _pending(self) -> list[dict[str, Any]]:
        """Recorded batches whose answers no session has recorded yet."""
        return [b for b in self._state["batches"] if not b.get("consumed") and b.get("id")]

    @staticmethod
    def _uncovered(items: Sequence[BatchItem],
                   pending: Sequence[dict[str, Any]]) -> list[BatchItem]:
        """The items with a sample that no pending batch asked for."""
        covered = {(r[1], int(r[2]) + j) for b in pending for r in b["requests"]
                   for j in range(int(r[3]))}
        return [it for it in items
                if any((it.cell_key, it.start + j) not in covered for j in range(it.request.n))]

    def _save(self) -> None:
        if self._state_path is not None:
            write_json(self._state_path, self._state)

    async def complete(self, request: CompletionRequest) -> list[Completion]:
        """The answers `prepare` collected for this request's samples."""
        if not self._prepared:
            raise UsageError(f"{self.name} answers whole plans: run it with `harness run` "
                             "(it does not take single requests, e.g. as a judge)")
        seeds: Sequence[int | None] = request.sample_seeds or \
            tuple(request.seed_of(j) for j in range(request.n))
        got: list[Completion | None] = []
        errors: list[str] = []
        for seed in seeds:
            answer = self._answers.get(self._sample_of_seed.get(seed, ("", -1))) \
                if seed is not None else None
            if isinstance(answer, Completion):
                got.append(answer)
            else:
                got.append(None)
                errors.append(answer or f"{self.name}: no batch answer for this sample")
        if not errors:
            return [c for c in got if c is not None]
        if all(c is None for c in got):
            raise TargetRequestError(errors[0])
        raise PartialAnswerError(errors[0], got)

    def consumed(self) -> None:
        """Every answer of this session's batches is recorded: a resume submits anew."""
        for entry in self._state["batches"]:
            if entry.get("id") in self._used:
                entry["consumed"] = True
        self._save()
