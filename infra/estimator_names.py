"""Terraform's validation of the `estimator` variable, generated from the estimator registry.

    python -m infra.estimator_names          # print the validation lines
    python -m infra.estimator_names --write  # replace them in terraform/variables.tf

Terraform cannot import Python: the allowed names are written between two markers in
`terraform/variables.tf` from `shared/estimators/registry.py`, and `tests/test_estimator_registry.py`
fails when they differ from the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.config import REPO_ROOT, EstimatorKind
from shared.estimators import registry

__all__ = ["END", "START", "allowed", "render", "rewrite"]

START = "    # estimator-names:start (python -m infra.estimator_names --write)"
END = "    # estimator-names:end"
VARIABLES = REPO_ROOT / "terraform" / "variables.tf"


def allowed() -> list[str]:
    """`auto` and every registered estimator."""
    return [EstimatorKind.AUTO.value, *registry.names()]


def render() -> str:
    names = allowed()
    listed = ", ".join(f'"{name}"' for name in names)
    spoken = ", ".join(names[:-1]) + f" or {names[-1]}"
    return "\n".join(
        [
            START,
            f"    condition     = contains([{listed}], var.estimator)",
            f'    error_message = "estimator must be {spoken}."',
            END,
        ]
    )


def rewrite(path: Path = VARIABLES) -> bool:
    """Replace the generated lines in `path`; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    updated = before + render() + after
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        print("terraform/variables.tf updated" if rewrite() else "terraform/variables.tf already up to date")
    else:
        print(render())
