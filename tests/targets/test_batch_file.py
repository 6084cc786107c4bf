"""batch-file:<model>: the plan as a Batch JSONL file answered offline (e.g. `vllm run-batch`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from harness.errors import InfrastructureError, UsageError
from harness.run import RunOptions, resume_run, run_suite
from harness.sim.server import ServerConfig, SimServer
from harness.store import iter_sample_dicts
from harness.targets import make_target
from harness.targets.batch_file import BatchFileTarget
from harness.targets.retry import TargetRequestError
from tests.targets.test_openai_batch import N_CELLS, _items, check_vllm_batch_shape, small_suite


def answer_offline(run_dir: Path, k: int, *, skip: int = 0) -> None:
    """What `vllm run-batch -i batch-input-k.jsonl -o batch-output-k.jsonl` writes, with the
    simulator as the model (OpenAI's output line format); the first `skip` lines unanswered."""
    sim = SimServer(ServerConfig())
    out = []
    for line in (run_dir / f"batch-input-{k}.jsonl").read_text().splitlines()[skip:]:
        request = json.loads(line)
        status, body = sim.answer_chat(request["body"])
        out.append(json.dumps({"id": "vllm-1", "custom_id": request["custom_id"],
                               "response": {"status_code": status, "request_id": "r",
                                            "body": body}, "error": None}))
    (run_dir / f"batch-output-{k}.jsonl").write_text("\n".join(out) + "\n")


def test_first_run_writes_the_file_and_says_how_to_answer_it_then_resume_labels(
        tmp_path: Path) -> None:
    suite = small_suite(tmp_path, samples=4)
    out = tmp_path / "out"
    with pytest.raises(InfrastructureError, match=r"vllm run-batch -i \S+batch-input-1.jsonl "
                       r"-o \S+batch-output-1.jsonl --model sim.*harness run --resume"):
        run_suite(suite, RunOptions(target="batch-file:sim", out_dir=out, progress=False))
    (run_dir,) = out.iterdir()
    check_vllm_batch_shape(run_dir / "batch-input-1.jsonl", N_CELLS * 4)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
    answer_offline(run_dir, 1)
    result = resume_run(run_dir)
    records = list(iter_sample_dicts(run_dir / "samples.jsonl"))
    keys = {(r["probe_id"], r["context"], r["sample_index"]) for r in records}
    assert len(records) == len(keys) == N_CELLS * 4
    assert all(r["outcome"] != "error" and r["model"] == "sim-vulnerable" for r in records)
    assert result.summary["tokens"]["out"] > 0
    state = json.loads((run_dir / "batch.json").read_text())
    assert [b["consumed"] for b in state["batches"]] == [True]


def test_unanswered_lines_are_errors_and_asked_again_in_a_new_file(tmp_path: Path) -> None:
    items = _items(3)

    async def main() -> None:
        first = BatchFileTarget("sim")
        with pytest.raises(InfrastructureError, match="1 batch input file"):
            await first.prepare(items, tmp_path, lambda line: None)
        answer_offline(tmp_path, 1, skip=1)  # the tool lost the first line
        second = BatchFileTarget("sim")
        await second.prepare(items, tmp_path, lambda line: None)
        with pytest.raises(TargetRequestError, match=r"batch-output-1\.jsonl: no result for "
                                                     r"request p0"):
            await second.complete(items[0].request)
        assert len(await second.complete(items[2].request)) == 2
        second.consumed()
        # The next session asks only for what is missing, in a new file.
        third = BatchFileTarget("sim")
        with pytest.raises(InfrastructureError, match=r"batch-input-2\.jsonl"):
            await third.prepare(items[:1], tmp_path, lambda line: None)
        lines = (tmp_path / "batch-input-2.jsonl").read_text().splitlines()
        assert [json.loads(x)["custom_id"] for x in lines] == ["p0|bare|0.7#0"]

    asyncio.run(main())


def test_spec_checks() -> None:
    assert isinstance(make_target("batch-file:m"), BatchFileTarget)
    with pytest.raises(UsageError, match="needs the model name"):
        make_target("batch-file:")
    with pytest.raises(UsageError, match="do not apply to batch-file"):
        make_target("batch-file:m", options={"base_url": "http://127.0.0.1:9/v1"})
