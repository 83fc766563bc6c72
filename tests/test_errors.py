"""The error family is closed: every exception the product defines is in `shared.errors`' tree.

And failure reasons are one enum: no module raises or matches a reason as a free string.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import errors
from shared.config import REPO_ROOT
from shared.errors import (
    RETRIED_BY_NEXT_RUN,
    AnalyticsError,
    EstimationFailed,
    InvalidAnswerError,
    InvalidParameter,
    Problem,
    ReasonCode,
    RequestRejected,
    RetryableError,
    validation_problems,
)
from shared.estimators.base import EstimateUsage

_PRODUCT = ("functions", "shared")


def _product_files() -> list[Path]:
    files = [REPO_ROOT / "main.py"]
    for package in _PRODUCT:
        files += sorted((REPO_ROOT / package).rglob("*.py"))
    return files


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined (not imported) in a deployed module, by name."""
    found: dict[str, type[BaseException]] = {}
    for path in _product_files():
        module = importlib.import_module(_module_name(path))
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[name] = value
    return found


def _tree_names() -> list[str]:
    """The class names drawn in the docstring's tree, in order."""
    assert errors.__doc__ is not None
    return re.findall(r"^\s*[│├└─ ]*([A-Z][A-Za-z]+)\s{2,}", errors.__doc__, re.MULTILINE)


def test_every_exception_of_the_product_belongs_to_the_family_and_is_in_the_tree() -> None:
    defined = _defined_exceptions()
    assert {"AnalyticsError", "InvalidParameter", "RateLimited", "ChartRenderFailed"} <= set(defined)
    outside = sorted(name for name, cls in defined.items() if not issubclass(cls, AnalyticsError))
    assert outside == []
    tree = _tree_names()
    assert sorted(set(defined) - set(tree)) == []  # every class drawn
    assert sorted(set(tree) - set(defined)) == []  # nothing drawn that does not exist
    assert len(tree) == len(set(tree))


def test_the_tree_draws_each_class_under_its_parent() -> None:
    """The indentation of the tree is the inheritance: each class sits under its direct base."""
    assert errors.__doc__ is not None
    defined = _defined_exceptions()
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        match = re.match(r"^(\s*[│├└─ ]*)([A-Z][A-Za-z]+)\s{2,}", line)
        if not match:
            continue
        depth, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert defined[name].__bases__ == (defined[stack[-1][1]],), name
        else:
            assert name == "AnalyticsError"
        stack.append((depth, name))


_REASON_NAMES = {"reason", "reason_code", "skip_reason"}  # ours; not the OpenAI SDK's `finish_reason`


def _reason_literals(files: list[Path]) -> list[str]:
    """`reason_code="..."` / `reason="..."` keywords, and reasons compared with a string."""
    found = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg in ("reason_code", "reason")
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.append(f"{path.name}:{node.value.lineno}")
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names = {getattr(side, "id", None) or getattr(side, "attr", None) for side in sides}
                if names & _REASON_NAMES and any(
                    isinstance(part, ast.Constant) and isinstance(part.value, str)
                    for side in sides
                    for part in ast.walk(side)
                ):
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_reason_is_a_free_string_in_the_product(tmp_path: Path) -> None:
    assert _reason_literals(_product_files()) == []
    # the walk is not vacuous: the old spellings are found
    stray = tmp_path / "stray.py"
    stray.write_text(
        'raise SkipConversation("gone", reason_code="not_found")\n'
        'if skip.reason_code == "not_found":\n    pass\n'
        'record = OutcomeRecord("c", FAILED, reason="enqueue_failed")\n'
    )
    assert sorted(_reason_literals([stray])) == ["stray.py:1", "stray.py:2", "stray.py:4"]


def test_reason_codes_store_the_same_strings_as_before() -> None:
    """The stored values are the contract of `skip_reason` and `run_outcomes.reason`."""
    assert {code.value for code in ReasonCode} == {
        "skipped",
        "too_few_timestamps",
        "malformed_document",
        "no_messages",
        "no_owner",
        "share_copy",
        "internal_chat",
        "not_found",
        "permanent_error",
        "estimation_failed",
        "input_rejected",
        "content_filter",
        "refused",
        "invalid_output",
        "transient_error",
        "enqueue_failed",
    }
    assert all(len(code.value) <= 64 for code in ReasonCode)  # VARCHAR(64)
    assert sorted(RETRIED_BY_NEXT_RUN) == ["enqueue_failed", "transient_error"]
    assert InvalidAnswerError(["x"]).reason_code is ReasonCode.INVALID_OUTPUT


def test_a_failed_estimate_carries_its_cost_in_a_typed_field() -> None:
    spent = EstimateUsage(requests=2, prompt_tokens=10)
    assert EstimationFailed("no", usage=spent).usage == spent
    assert RetryableError("later", usage=spent).usage == spent
    assert EstimationFailed("no").usage is None and RetryableError("later").usage is None


class _Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(1, ge=1)


def test_pydantic_errors_become_problems_one_per_parameter() -> None:
    with pytest.raises(ValidationError) as caught:
        _Sample.model_validate({"days": 0, "colour": "red"})
    problems = validation_problems(caught.value)
    assert problems == (
        Problem("days", "Input should be greater than or equal to 1"),
        Problem("colour", "unknown parameter"),
    )
    error = InvalidParameter.from_validation(caught.value)
    assert isinstance(error, RequestRejected) and error.status_code == 422
    assert error.problems == problems and error.parameter == "days"
    assert str(error) == "days: Input should be greater than or equal to 1; colour: unknown parameter"
    single = InvalidParameter("end_date", "must not be in the future")
    assert (
        str(single) == "end_date: must not be in the future" and single.problem == "must not be in the future"
    )
    with pytest.raises(ValueError):
        InvalidParameter.of([])
