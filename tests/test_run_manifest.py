"""harness.run._manifest: target kind options in the manifest, and resuming run folders whose
manifests were written before kind options had a place of their own (settings.base_url and
settings.api_key_env only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run import RunOptions, resume_run, run_suite
from harness.run._manifest import resume_target_options, stored_target_options
from harness.sim.server import ServerConfig
from harness.store import MANIFEST, SAMPLES, iter_sample_dicts
from tests.conftest import write_small_suite
from tests.targets.test_openai_batch import ThreadedSim

OLD = {"samples": 2, "base_url": "http://127.0.0.1:9/v1", "api_key_env": "MY_KEY"}


def test_old_manifests_keep_their_endpoint_options() -> None:
    assert stored_target_options(OLD) == {"base_url": "http://127.0.0.1:9/v1",
                                          "api_key_env": "MY_KEY"}
    assert stored_target_options({"base_url": None, "api_key_env": None}) == {}
    new = {**OLD, "target_options": {"base_url": "http://127.0.0.1:8/v1"}}
    assert stored_target_options(new) == {"base_url": "http://127.0.0.1:8/v1"}


def test_a_resume_keeps_the_endpoint_and_may_change_the_key_variable(tmp_path: Path) -> None:
    got = resume_target_options(OLD, {"api_key_env": "OTHER"}, tmp_path)
    assert got == {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "OTHER"}
    assert resume_target_options(OLD, {"base_url": "http://127.0.0.1:9/v1"}, tmp_path) == {
        "base_url": "http://127.0.0.1:9/v1", "api_key_env": "MY_KEY"}
    with pytest.raises(UsageError, match="is not the endpoint"):
        resume_target_options(OLD, {"base_url": "http://127.0.0.1:7/v1"}, tmp_path)


def test_an_old_format_run_folder_resumes_against_its_endpoint(tmp_path: Path) -> None:
    suite = write_small_suite(tmp_path, samples=2, temperatures="[0.0]")
    server = ThreadedSim(ServerConfig())
    try:
        whole = run_suite(suite, RunOptions(target="openai:sim", out_dir=tmp_path / "a",
                                            target_options={"base_url": server.base_url},
                                            progress=False, use_env=False))
        manifest = json.loads((whole.run_dir / MANIFEST).read_text())
        settings = manifest["settings"]
        assert settings["target_options"] == {"base_url": server.base_url}
        assert settings["base_url"] == server.base_url and settings["api_key_env"] is None
        # The same run as a folder of the old format, killed halfway: no target_options.
        cut = run_suite(suite, RunOptions(target="openai:sim", out_dir=tmp_path / "b",
                                          target_options={"base_url": server.base_url},
                                          progress=False, use_env=False))
        m = json.loads((cut.run_dir / MANIFEST).read_text())
        del m["settings"]["target_options"]
        m["status"] = "interrupted"
        (cut.run_dir / MANIFEST).write_text(json.dumps(m))
        lines = (cut.run_dir / SAMPLES).read_text().splitlines(keepends=True)
        (cut.run_dir / SAMPLES).write_text("".join(lines[: len(lines) // 2]))
        before = server.chat_requests
        resumed = resume_run(cut.run_dir, RunOptions(progress=False))
        assert server.chat_requests > before  # the missing half came from the endpoint
    finally:
        server.stop()
    again = json.loads((resumed.run_dir / MANIFEST).read_text())
    assert again["target"]["base_url"] == server.base_url
    assert again["settings"]["base_url"] == server.base_url
    key = ("probe_id", "context", "temperature", "sample_index", "response", "outcome")
    records = sorted(tuple(r[k] for k in key) for r in iter_sample_dicts(resumed.run_dir / SAMPLES))
    expected = sorted(tuple(r[k] for k in key) for r in iter_sample_dicts(whole.run_dir / SAMPLES))
    assert records == expected
    assert resumed.summary["groups"] == whole.summary["groups"]
