"""The README's configuration table, generated from `shared.config.Settings`.

    python -m infra.readme_settings          # print the table
    python -m infra.readme_settings --write  # replace it in README.md

`tests/test_readme.py` fails when the README's table differs from this output.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from pydantic import SecretStr

from shared.config import REPO_ROOT, Settings

__all__ = ["END", "START", "render", "rewrite", "setting_groups"]

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
README = REPO_ROOT / "README.md"


def _default(value: object) -> str:
    if isinstance(value, SecretStr):
        return "(local placeholder)" if value.get_secret_value() else "—"
    if hasattr(value, "value"):
        value = value.value  # enums
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "built-in table" if value else "—"
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value))  # an empty list: —
    if isinstance(value, Path) and value.is_relative_to(REPO_ROOT):
        value = value.relative_to(REPO_ROOT)  # the same on every checkout
    text = str(value)
    return f"`{text}`" if text else "—"


_SECTION = re.compile(r"^\s*# --- (?P<title>.+?) -+\s*$")


def setting_groups() -> list[tuple[str, list[str]]]:
    """The fields of `Settings` by the `# --- section ---` comments of shared/config.py, in order."""
    source = (REPO_ROOT / "shared" / "config.py").read_text(encoding="utf-8")
    (settings_class,) = [
        node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "Settings"
    ]
    sections = {
        number: match.group("title")
        for number, line in enumerate(source.splitlines(), start=1)
        if (match := _SECTION.match(line))
    }
    groups: list[tuple[str, list[str]]] = [("general", [])]
    fields = [
        (node.lineno, node.target.id)
        for node in settings_class.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id in Settings.model_fields
    ]
    section_lines = sorted(sections)
    for line, name in fields:
        title = next((sections[number] for number in reversed(section_lines) if number < line), None)
        if title is not None and title != groups[-1][0]:
            groups.append((title, []))
        groups[-1][1].append(name)
    return [(title, names) for title, names in groups if names]


def render() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for title, names in setting_groups():
        lines.append(f"| **{title}** | | |")
        for name in names:
            lines.append(_row(name))
    return "\n".join(lines)


def _row(name: str) -> str:
    field = Settings.model_fields[name]
    variables = " / ".join(f"`{alias}`" for alias in field.validation_alias.choices)  # type: ignore[union-attr]
    default = field.get_default(call_default_factory=True)
    description = (field.description or name).replace("|", "\\|").replace("\n", " ")
    return f"| {variables} | {_default(default)} | {description} |"


def rewrite(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{render()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(rewrite(README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(render())
