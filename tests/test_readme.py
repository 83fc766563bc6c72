"""The README stays true: the two commands on top, and a configuration table that matches the settings."""

from __future__ import annotations

import re

from infra.readme_settings import END, README, START, render


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8").splitlines()[:15]
    assert any("make run" in line for line in head)
    assert any("make test" in line for line in head)


def test_configuration_table_matches_the_settings_class() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == render(), "run `python -m infra.readme_settings --write` to refresh the README table"


def test_the_first_screen_says_how_to_use_it_with_your_open_webui_and_shows_the_dashboard() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert "## Use it with your Open WebUI" in lines[:30]
    assert any("OPENWEBUI_DATABASE_URL" in line for line in lines[:30])
    assert any("](docs/dashboard.png)" in line for line in lines[:40])


def test_every_link_stays_inside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    root = README.parent
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert not target.startswith(("http:", "https:", "/", "..")), target
        if target.startswith("#"):
            heading = target[1:].replace("-", " ")
            assert any(
                line.lstrip("#").strip().lower() == heading
                for line in text.splitlines()
                if line.startswith("#")
            ), target
        else:
            assert (root / target).exists(), target
    assert "../shared" not in text and "the spec's" not in text.split(START)[0]


ARCHITECTURE = README.parent / "docs" / "ARCHITECTURE.md"
_REPO_PATH = re.compile(
    r"`((?:main\.py|(?:functions|shared|infra|tests|terraform|migrations|bench|docs)/[^`\s]*))`"
)


def test_the_architecture_page_names_only_what_exists() -> None:
    """docs/ARCHITECTURE.md stays true: its paths exist, its links stay in the repository."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    root = README.parent.resolve()
    paths = _REPO_PATH.findall(text)
    assert len(paths) > 20  # the page names the code it describes
    missing = [path for path in paths if not (root / path.rstrip("/")).exists()]
    assert missing == []
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert not target.startswith(("http:", "https:", "/")), target
        resolved = (ARCHITECTURE.parent / target).resolve()
        assert resolved.is_relative_to(root) and resolved.exists(), target
    assert "../shared" not in text
    assert "](docs/ARCHITECTURE.md)" in README.read_text(encoding="utf-8")


def test_the_architecture_page_draws_every_run_status_and_entry_point() -> None:
    from functions.runs import RunStatus

    text = ARCHITECTURE.read_text(encoding="utf-8")
    diagram = text.split("## The run state machine", 1)[1].split("## ", 1)[0]
    assert [status.value for status in RunStatus if status.value not in diagram] == []
    for entry_point in ("dispatch", "analyze", "aggregate", "api"):
        assert f"\n{entry_point}" in text.split("## The data walk", 1)[1]
