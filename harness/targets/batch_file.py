"""`batch-file:<model>`: the plan as a Batch JSONL file that another tool answers offline.

For self-hosted models served by `vllm run-batch` (or any tool that reads OpenAI batch input
and writes OpenAI batch output). The first `harness run` writes `RUN_DIR/batch-input-<k>.jsonl`
(the lines `openai-batch:<model>` uploads), records it in `RUN_DIR/batch.json` and stops with
exit 4 and the command to run, e.g.

    vllm run-batch -i RUN_DIR/batch-input-1.jsonl -o RUN_DIR/batch-output-1.jsonl --model M

`harness run --resume RUN_DIR` then reads `batch-output-<k>.jsonl` (OpenAI's output line
format: `custom_id`, `response.status_code`, `response.body`, `error`) and labels the answers
through the normal path; lines missing from the output are samples in error, asked for again
(in a new input file) by a later `--resume`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonlines

from harness.errors import InfrastructureError, UsageError
from harness.records import Completion
from harness.store import utc_now, write_private_text
from harness.targets._batch_answers import STATE_FILE, BatchAnswers
from harness.targets._batch_files import LineAnswer, answers_by_sample, input_line, read_line
from harness.targets.base import BatchItem, TargetOptions
from harness.targets.openai_wire import request_body


class BatchFileTarget(BatchAnswers):
    """`batch-file:<model>`: answers come from an output file another tool writes."""

    supports_n = True

    def __init__(self, model: str) -> None:
        if not model:
            raise UsageError("target 'batch-file:' needs the model name the batch tool serves, "
                             "e.g. batch-file:meta-llama/Llama-3.1-8B-Instruct")
        super().__init__()
        self.model = model
        self.name = f"batch-file:{model}"

    def describe(self) -> dict[str, object]:
        """Settings and the files used, for the manifest."""
        return {"kind": "batch-file", "name": self.name, "model": self.model,
                "n_batching": True, "state_file": STATE_FILE,
                "batches": [{k: b.get(k) for k in ("id", "input_file", "output_file")}
                            for b in self._state["batches"]]}

    async def aclose(self) -> None:
        """Nothing to release."""

    async def prepare(self, items: Sequence[BatchItem], run_dir: Path,
                      notify: Callable[[str], None]) -> None:
        """Read the answers of the recorded input files, or write a new input file and stop
        (InfrastructureError, exit 4) saying how to answer it."""
        self._open(items, run_dir)
        if not items:
            return
        pending = self._pending()
        new = self._uncovered(items, pending)
        if new:
            pending.append(self._write_input(new, run_dir))
        waiting = [b for b in pending if not (run_dir / b["output_file"]).exists()]
        if waiting:
            commands = "; ".join(
                f"vllm run-batch -i {run_dir / b['input_file']} -o {run_dir / b['output_file']} "
                f"--model {self.model}" for b in waiting)
            raise InfrastructureError(
                f"{len(waiting)} batch input file(s) wait for answers: {commands} (or any tool "
                "that writes OpenAI batch output there); then harness run --resume "
                f"{run_dir}")
        for entry in pending:
            self._answers.update(self._read_output(entry, run_dir))
            self._used.append(entry["id"])
            notify(f"read {entry['output_file']}")

    def _write_input(self, items: Sequence[BatchItem], run_dir: Path) -> dict[str, Any]:
        k = len(self._state["batches"]) + 1
        name = f"batch-input-{k}.jsonl"
        lines = [input_line(it, self.model, request_body) for it in items]
        buffer = io.StringIO()
        with jsonlines.Writer(buffer, compact=True) as writer:
            writer.write_all(lines)
        write_private_text(run_dir / name, buffer.getvalue())
        entry: dict[str, Any] = {
            "id": f"file-{k}", "input_file": name, "output_file": f"batch-output-{k}.jsonl",
            "submitted": utc_now(), "consumed": False,
            "requests": [[line["custom_id"], it.cell_key, it.start, it.request.n,
                          it.request.seed] for line, it in zip(lines, items, strict=True)]}
        self._state["batches"].append(entry)
        self._save()
        return entry

    def _read_output(self, entry: dict[str, Any], run_dir: Path,
                     ) -> dict[tuple[str, int], Completion | str]:
        requests = entry["requests"]
        sent = {r[0]: (int(r[3]), r[4]) for r in requests}
        where = str(entry["output_file"])
        lines: list[LineAnswer] = []
        with jsonlines.open(run_dir / where) as reader:
            for obj in reader.iter(skip_empty=True, skip_invalid=True):
                cid = obj.get("custom_id") if isinstance(obj, dict) else None
                n, seed = sent.get(cid, (1, None))
                lines.append(read_line(obj, n=n, seed_sent=seed, where=where))
        return answers_by_sample(requests, lines, missing=where)


def build(argument: str, options: TargetOptions) -> BatchFileTarget:
    """Target kind `batch-file:<model>` (registry factory)."""
    if options.rpm or options.tpm:
        raise UsageError("--rpm/--tpm pace openai:<model> requests, not batch files: drop them")
    return BatchFileTarget(argument)
