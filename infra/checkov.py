"""Run checkov over terraform/ from its own virtual environment.

checkov pins dependencies that clash with the product's (pydantic, protobuf, ...), so
it lives in ``.venv-checkov`` (git-ignored), created on first use and kept between
runs. The pinned version below is the only place to bump it.

    python -m infra.checkov            # human-readable report, exit status 1 on a failure
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["CHECKOV_VENV", "CHECKOV_VERSION", "TERRAFORM_DIR", "checkov_executable", "run_checkov"]

CHECKOV_VERSION = "3.3.30"

_REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKOV_VENV = _REPO_ROOT / ".venv-checkov"
TERRAFORM_DIR = _REPO_ROOT / "terraform"

_INSTALL_TIMEOUT_SECONDS = 900
_SCAN_TIMEOUT_SECONDS = 300

# No network at scan time: no guideline download from Prisma Cloud, no PyPI version check.
_OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


def checkov_executable() -> Path:
    """The checkov command of the pinned version, installing it on first use."""
    executable = CHECKOV_VENV / "bin" / "checkov"
    marker = CHECKOV_VENV / ".checkov-version"
    CHECKOV_VENV.mkdir(exist_ok=True)
    # Parallel test runs must not install into the same directory at once.
    with (CHECKOV_VENV / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = marker.read_text().strip() if marker.exists() else ""
        if not executable.exists() or installed != CHECKOV_VERSION:
            _install()
            marker.write_text(CHECKOV_VERSION + "\n")
    return executable


def _install() -> None:
    python = CHECKOV_VENV / "bin" / "python"
    if not python.exists():
        # sys.executable may itself be a venv's python: venv builds on its base interpreter.
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"checkov=={CHECKOV_VERSION}",
        ],
        check=True,
        timeout=_INSTALL_TIMEOUT_SECONDS,
    )


def _command(directory: Path, *options: str) -> list[str]:
    return [
        str(checkov_executable()),
        "--directory",
        str(directory),
        "--framework",
        "terraform",
        "--compact",
        "--skip-download",
        *options,
    ]


def run_checkov(directory: Path = TERRAFORM_DIR) -> dict[str, Any]:
    """Scan ``directory`` and return checkov's JSON report (``summary``, ``results``)."""
    completed = subprocess.run(
        # Not --quiet: it would drop the passed and skipped checks from the JSON report.
        _command(directory, "--output", "json"),
        capture_output=True,
        text=True,
        timeout=_SCAN_TIMEOUT_SECONDS,
        env={**os.environ, **_OFFLINE_ENV},
        check=False,
    )
    # Exit status 1 means "failed checks"; anything else without a report is a crash.
    if completed.returncode not in (0, 1) or not completed.stdout.strip():
        raise RuntimeError(f"checkov exited with {completed.returncode}:\n{completed.stderr[-4000:]}")
    report = json.loads(completed.stdout)
    # One framework gives one report; several would come as a list.
    return report[0] if isinstance(report, list) else report


def main() -> int:
    """Print checkov's report for terraform/ and return its exit status."""
    return subprocess.run(
        _command(TERRAFORM_DIR, "--quiet"), env={**os.environ, **_OFFLINE_ENV}, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
