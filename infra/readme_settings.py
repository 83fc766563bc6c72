"""The README's configuration table, generated from `shared.config.Settings`.

    python -m infra.readme_settings          # print the table
    python -m infra.readme_settings --write  # replace it in README.md

`tests/test_readme.py` fails when the README's table differs from this output.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from shared.config import REPO_ROOT, Settings

__all__ = ["END", "START", "render", "rewrite"]

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


def render() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        variables = " / ".join(f"`{alias}`" for alias in field.validation_alias.choices)  # type: ignore[union-attr]
        default = field.get_default(call_default_factory=True)
        description = (field.description or name).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {variables} | {_default(default)} | {description} |")
    return "\n".join(lines)


def rewrite(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{render()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(rewrite(README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(render())
