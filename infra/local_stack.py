"""The four functions under functions-framework on loopback: one process per function, as in the cloud.

The processes share the caller's settings through their environment, plus the URLs
of each other (the local HTTP queue delivers to them) and the shared task secret.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from shared.config import REPO_ROOT, Settings
from shared.errors import ConfigurationError

__all__ = ["FUNCTIONS", "LocalStack", "check_listen_address", "free_port", "is_loopback"]

FUNCTIONS = ("dispatch", "analyze", "aggregate", "api")
_URL_VARIABLES = {
    "dispatch": "ANALYTICS_DISPATCHER_URL",
    "analyze": "ANALYTICS_ANALYZER_URL",
    "aggregate": "ANALYTICS_AGGREGATOR_URL",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_listen_address(host: str, settings: Settings) -> None:
    """Refuse to put the dashboard on a reachable address while its password is the default or weak."""
    if is_loopback(host):
        return
    problem = settings.secret_problem("dashboard_password", "ANALYTICS_DASHBOARD_PASSWORD")
    if problem:
        raise ConfigurationError(
            f"refusing to listen on {host}: {problem}; anyone who can reach this address could "
            "read the dashboard. Set a password of at least 12 characters, or listen on 127.0.0.1."
        )


def _connect_host(host: str) -> str:
    """Where to reach a server bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host  # noqa: S104  (not a bind)


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], timeout: float, log: Path, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"function server on port {port} exited:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((_connect_host(host), port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"function server on port {port} did not start within {timeout:.0f}s")


class LocalStack:
    """Start and stop `functions-framework` processes for the product's functions."""

    def __init__(
        self,
        environment: Mapping[str, str],
        *,
        log_dir: Path,
        ports: Mapping[str, int] | None = None,
        functions: tuple[str, ...] = FUNCTIONS,
        api_host: str = "127.0.0.1",
    ) -> None:
        """`api_host`: where the api function listens (the others always listen on loopback)."""
        self.functions = functions
        self.hosts = {name: api_host if name == "api" else "127.0.0.1" for name in functions}
        self.ports = {name: (ports or {}).get(name) or free_port() for name in functions}
        self.urls = {
            name: f"http://{_connect_host(self.hosts[name])}:{port}/" for name, port in self.ports.items()
        }
        self._log_dir = log_dir
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.environment = {
            **os.environ,
            "ANALYTICS_QUEUE_BACKEND": "local_http",
            **{_URL_VARIABLES[name]: url for name, url in self.urls.items() if name in _URL_VARIABLES},
            **environment,  # the caller's choices win (e.g. the Cloud Tasks emulator as the queue)
        }

    def log_path(self, function: str) -> Path:
        return self._log_dir / f"{function}.log"

    def start_function(self, function: str, timeout: float = 30.0) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(function)
        with log.open("ab") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "functions_framework",
                    f"--target={function}",
                    f"--source={REPO_ROOT / 'infra' / 'local_functions.py'}",
                    f"--host={self.hosts[function]}",
                    f"--port={self.ports[function]}",
                ],
                cwd=REPO_ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the server and its workers die together
            )
        self._processes[function] = process
        _wait_for_port(self.ports[function], process, timeout, log, self.hosts[function])

    def start(self) -> LocalStack:
        for function in self.functions:
            self.start_function(function)
        return self

    def kill_function(self, function: str) -> None:
        """Kill one function's process abruptly (chaos tests), without waiting for its work."""
        process = self._processes.pop(function)
        os.killpg(process.pid, signal.SIGKILL)  # the gunicorn workers too, or one keeps the port
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._processes.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
