"""The real local model for `make test-llm`: one llama-cpp-python server for the session.

The server is started here and always stopped (fixture teardown; it also dies with the test
process, see tests/llm/llama_server.py). Tests here are marked `llm`, which plain
`make test` deselects; without the llm venv they fail with how to build it, never skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.llm.llama_server import LlamaServer, ServerError


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    venv = Path(os.environ.get("HARNESS_LLM_VENV", ROOT / ".venv-llm"))
    port = int(os.environ["HARNESS_LLM_PORT"]) if os.environ.get("HARNESS_LLM_PORT") else None
    server = LlamaServer(venv, port, tmp_path_factory.mktemp("llama") / "server.log")
    try:
        server.start()
    except ServerError as exc:
        pytest.fail(f"cannot start the llama server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
