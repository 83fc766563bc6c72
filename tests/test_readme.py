"""The README stays true: the two commands on top, and a configuration table that matches the settings."""

from __future__ import annotations

from infra.readme_settings import END, README, START, render


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8").splitlines()[:15]
    assert any("make run" in line for line in head)
    assert any("make test" in line for line in head)


def test_configuration_table_matches_the_settings_class() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == render(), "run `python -m infra.readme_settings --write` to refresh the README table"
