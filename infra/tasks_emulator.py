"""gcloud-tasks-emulator in its own virtual environment (it needs protobuf < 5; we ship protobuf 7).

`TasksEmulator(queue_path).start()` creates `.venv-tasks-emulator` on first use
(pinned versions, under a file lock so parallel callers build it once), starts the
emulator on a free loopback port with the queue pre-created, and stops it on exit.
The product talks to it with the real `google-cloud-tasks` client over gRPC.
"""

from __future__ import annotations

import fcntl
import socket
import subprocess
import time
from pathlib import Path

from infra.local_stack import free_port
from shared.config import REPO_ROOT

__all__ = ["EMULATOR_VENV", "TasksEmulator", "ensure_emulator_venv"]

EMULATOR_VENV = REPO_ROOT / ".venv-tasks-emulator"
_REQUIREMENTS = (
    "gcloud-tasks-emulator==0.6.2",
    "protobuf==4.25.8",
    "google-cloud-tasks==2.16.5",
    "grpcio==1.71.0",
    "PyYAML==6.0.2",
)


def ensure_emulator_venv(python: str = "python3.11") -> Path:
    """The emulator's interpreter, installing it on first use."""
    interpreter = EMULATOR_VENV / "bin" / "python"
    stamp = EMULATOR_VENV / ".installed"
    lock_path = REPO_ROOT / ".venv-tasks-emulator.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == "\n".join(_REQUIREMENTS):
            return interpreter
        if not interpreter.exists():
            subprocess.run([python, "-m", "venv", str(EMULATOR_VENV)], check=True)
        subprocess.run(
            [str(interpreter), "-m", "pip", "install", "--quiet", *_REQUIREMENTS],
            check=True,
        )
        stamp.write_text("\n".join(_REQUIREMENTS))
    return interpreter


class TasksEmulator:
    """One emulator process with one queue."""

    def __init__(self, queue_path: str, *, log_path: Path) -> None:
        self.queue_path = queue_path
        self.port = free_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> TasksEmulator:
        interpreter = ensure_emulator_venv()
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(interpreter),
                    "-m",
                    "gcloud_tasks_emulator",
                    "start",
                    f"--port={self.port}",
                    f"--default-queue={self.queue_path}",
                    "--max-retries=20",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"tasks emulator exited:\n{self._log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("tasks emulator did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def __enter__(self) -> TasksEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
