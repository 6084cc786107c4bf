"""Start and always stop llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct.

Used by the `tests/llm` fixture and by `make demo-llm`:

    python tests/llm/llama_server.py --venv .venv-llm [--port P] -- COMMAND ...

starts the server on 127.0.0.1 (a free port unless --port), waits until it answers, runs
COMMAND with ``{base_url}`` (``http://127.0.0.1:P/v1``) and ``{model}`` in its arguments
replaced (and ``LLM_BASE_URL``, ``LLM_MODEL`` in its environment), then stops the server
whatever happened (exit, Ctrl-C, SIGTERM, SIGHUP) and exits with COMMAND's exit code. The
server also dies with the process that started it (Linux PR_SET_PDEATHSIG), so a `kill -9`
of the test run or the demo does not leave it running. ``HARNESS_LLM_SERVER_ARGS`` adds
flags to the server's command line (e.g. ``--n_batch 1``, see docs/servers.md).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

HOST = "127.0.0.1"
MODEL_ALIAS = "smollm2-135m-instruct"
READY_TIMEOUT_S = 180.0


class ServerError(RuntimeError):
    """The server could not be started (missing venv, crashed, never answered)."""


def free_port() -> int:
    """A port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # PR_SET_PDEATHSIG (1): the kernel sends SIGTERM to the server when its parent dies,
    # even by SIGKILL, so no server outlives the test run or the demo.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class LlamaServer:
    """One llama-cpp-python server process on 127.0.0.1."""

    def __init__(self, venv: Path, port: int | None = None, log_path: Path | None = None,
                 n_ctx: int = 2048, threads: int | None = None) -> None:
        self.venv = venv
        self.python = venv / "bin" / "python"
        self.port = port or free_port()
        self.log_path = log_path or venv / "server.log"
        self.n_ctx = n_ctx
        # One thread: on two shared cores (the harness process, a CI runner, other jobs)
        # two OpenMP threads ran 4-10x slower than one (2.3 s vs 11-25 s for 60 tokens).
        self.threads = threads or 1
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def gguf(self) -> Path:
        if not self.python.exists():
            raise ServerError(f"{self.python} does not exist: build the venv with "
                              "`make .venv-llm/.installed` (make demo-llm / test-llm do)")
        here = Path(__file__).resolve().parent
        out = subprocess.run([str(self.python), str(here / "gguf_path.py")],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise ServerError(out.stderr.strip() or out.stdout.strip())
        return Path(out.stdout.strip())

    def start(self) -> None:
        """Start the server and wait until it answers GET /v1/models."""
        model = self.gguf()
        cmd = [str(self.python), "-m", "llama_cpp.server", "--model", str(model),
               "--model_alias", MODEL_ALIAS, "--host", HOST, "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
               "--verbose", "False", *shlex.split(os.environ.get("HARNESS_LLM_SERVER_ARGS", ""))]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"llama server exited with {self.proc.returncode} before "
                                  f"answering; its log ({self.log_path}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    json.load(r)
                self.warm_up()
                return
            except (OSError, ValueError):
                time.sleep(0.3)
        self.stop()
        raise ServerError(f"llama server did not answer within {READY_TIMEOUT_S:.0f} s; its "
                          f"log ({self.log_path}):\n{self.log_tail()}")

    def warm_up(self) -> None:
        """One short chat request: a server that crashes on real prompts fails here, once,
        with its log, instead of as errors in every test."""
        body = json.dumps({"model": MODEL_ALIAS, "max_tokens": 4, "temperature": 0,
                           "messages": [{"role": "user", "content": "Say hello to the team."}]})
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                json.load(r)
        except (OSError, ValueError) as exc:
            time.sleep(0.5)
            code = self.proc.poll() if self.proc else None
            self.stop()
            hint = ("; a segmentation fault on the first prompt is the AMX crash of a "
                    "natively built llama-cpp-python, see docs/servers.md"
                    if code == -signal.SIGSEGV else "")
            raise ServerError(f"llama server failed its first chat request ({exc}; exit code "
                              f"{code}{hint}); its log ({self.log_path}):\n{self.log_tail()}"
                              ) from None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def running(venv: Path, port: int | None = None,
            log_path: Path | None = None) -> Iterator[LlamaServer]:
    """A started server, stopped on leaving the block whatever happens."""
    server = LlamaServer(venv, port, log_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path(".venv-llm"))
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)  # so the finally below stops the server
    try:
        with running(args.venv, args.port, args.log) as server:
            print(f"llama server: SmolLM2-135M-Instruct at {server.base_url} "
                  f"(model {MODEL_ALIAS}, log {server.log_path})", flush=True)
            env = {**os.environ, "LLM_BASE_URL": server.base_url, "LLM_MODEL": MODEL_ALIAS}
            argv = [a.replace("{base_url}", server.base_url).replace("{model}", MODEL_ALIAS)
                    for a in command]
            code = subprocess.call(argv, env=env)
        print("llama server: stopped", flush=True)
        return code
    except ServerError as exc:
        print(f"llama server: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("llama server: interrupted; stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
