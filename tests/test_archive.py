"""The deployment archive works on its own: built as Terraform builds it, installed from `requirements.txt` only.

The zip holds what `data.archive_file.source` selects (terraform/*.tf, parsed). It
is extracted outside the repository, a fresh virtual environment gets
`pip install -r requirements.txt` of the archive and nothing else, and a Python
process started there (cwd in the extracted archive, no path into the repository)
loads each of the four entry points of `main.py` the way Cloud Functions does
(functions-framework's `create_app(target, source)`) and sends one request through
each: `/healthz` to the api, and an unauthenticated task to each pipeline
function, which must refuse it. A module of the repository that the archive
lacks, or a dependency that requirements.txt does not pin, fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

from tests.archive_support import REPO_ROOT, build_archive

pytestmark = pytest.mark.slow  # installs the runtime requirements into a new venv

ENTRY_POINTS = ("dispatch", "analyze", "aggregate", "api")

_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import functions_framework

    here = Path.cwd().resolve()
    results = {}
    for target in ("dispatch", "analyze", "aggregate", "api"):
        app = functions_framework.create_app(target=target, source=str(here / "main.py"))
        client = app.test_client()
        if target == "api":
            response = client.get("/healthz")
        else:
            response = client.post("/", json={"run_id": "00000000-0000-0000-0000-000000000000"})
        results[target] = {"status": response.status_code, "body": response.get_json(silent=True)}

    loaded = {
        name: getattr(module, "__file__", None) or ""
        for name, module in list(sys.modules.items())
        if name == "main" or name.split(".")[0] in ("functions", "shared", "infra", "tests")
    }
    try:
        import infra  # noqa: F401
        infra_importable = True
    except ImportError:
        infra_importable = False
    print(json.dumps({"results": results, "loaded": loaded, "infra_importable": infra_importable}))
    """
)


def _clean_environment(home: Path) -> dict[str, str]:
    """This process's environment without anything pointing Python at the repository or its venv."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "COGNIFORCE_", "ANALYTICS_", "OPENWEBUI_", "OPENAI_"))
        and key not in ("PYTEST_CURRENT_TEST", "PWD")
    }
    environment["HOME"] = os.environ.get("HOME", str(home))
    environment["PYTHONNOUSERSITE"] = "1"
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(extracted archive, its venv's python, files in the archive)."""
    work = tmp_path_factory.mktemp("archive")
    assert REPO_ROOT not in work.parents
    zip_path = work / "function-source.zip"
    files = build_archive(zip_path)
    extracted = work / "source"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(extracted)
    environment = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(environment)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "-r", "requirements.txt"],
        cwd=extracted,
        env=_clean_environment(work),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return extracted, python, files


def test_the_archive_holds_the_runtime_and_nothing_of_the_local_tooling(
    deployed: tuple[Path, Path, list[str]],
) -> None:
    _, _, files = deployed
    assert {"main.py", "requirements.txt", "functions/api/app.py", "shared/errors.py"} <= set(files)
    assert any(name.startswith("migrations/") and name.endswith(".sql") for name in files)
    assert any(name.startswith("functions/api/templates/") for name in files)
    leaked = [
        name for name in files if name.split("/")[0] in ("infra", "tests", "bench", "terraform", "docs")
    ]
    assert leaked == []


def test_each_entry_point_loads_and_answers_from_the_archive_alone(
    deployed: tuple[Path, Path, list[str]],
) -> None:
    extracted, python, _ = deployed
    probe = subprocess.run(
        [str(python), "-c", _PROBE],
        cwd=extracted,
        env=_clean_environment(extracted.parent),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    report = json.loads(probe.stdout.strip().splitlines()[-1])

    # everything of the product was loaded from the extracted archive, nothing from the repository
    loaded = report["loaded"]
    assert "main" in loaded and "functions.api.app" in loaded and "functions.pipeline" in loaded
    outside = {
        name: path for name, path in loaded.items() if path and extracted.resolve() not in Path(path).parents
    }
    assert outside == {}
    assert not any(name.split(".")[0] in ("infra", "tests") for name in loaded)
    assert report["infra_importable"] is False

    results = report["results"]
    assert set(results) == set(ENTRY_POINTS)
    assert results["api"]["status"] == 200, results["api"]
    assert results["api"]["body"]["status"] == "ok"
    for target in ("dispatch", "analyze", "aggregate"):
        # the product's own task authentication answered, not a crash or a missing module
        assert results[target]["status"] in (401, 403), (target, results[target])
        assert "error" in results[target]["body"], (target, results[target])


def test_the_probe_runs_in_the_fresh_environment_not_this_one(deployed: tuple[Path, Path, list[str]]) -> None:
    """The check is not vacuous: the venv's Python is not this one, and pytest (a dev tool) is absent there."""
    extracted, python, _ = deployed
    assert Path(sys.prefix).resolve() not in python.resolve().parents
    absent = subprocess.run(
        [str(python), "-c", "import pytest"],
        cwd=extracted,
        env=_clean_environment(extracted.parent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert absent.returncode != 0 and "No module named 'pytest'" in absent.stderr
