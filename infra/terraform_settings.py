"""How every setting reaches the cloud: terraform/ (read with python-hcl2) set against `Settings`.

    python -m infra.terraform_settings           # print terraform/terraform.tfvars.example
    python -m infra.terraform_settings --write   # rewrite it

Each field of `shared.config.Settings` is set in the functions' environment by
terraform/functions.tf (`local.required_environment`, `local.optional_environment`),
mounted as a secret by terraform/secrets.tf (`local.secret_environment`), or listed in
`shared.config.LOCAL_ONLY` with the reason. `tests/test_terraform.py` checks that, with
`missing_settings()` and `how_to_add()` telling what a new field needs.

The terraform binary cannot run here, so `evaluate()` reads the small subset of HCL
expressions that the validations, preconditions and environment use (operators,
conditionals, `for` expressions and the functions in `_FUNCTIONS`) as Python.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import Any, get_args, get_origin

import annotated_types
import hcl2
from pydantic import AliasChoices, SecretStr

from infra.readme_settings import setting_groups
from shared.config import LOCAL_ONLY, REPO_ROOT, Settings

__all__ = [
    "TERRAFORM_DIR",
    "TFVARS_EXAMPLE",
    "HclError",
    "aliases",
    "environment_expressions",
    "evaluate",
    "how_to_add",
    "load",
    "missing_settings",
    "mounted_secrets",
    "render_tfvars_example",
    "setting_variables",
    "variables_of",
]

TERRAFORM_DIR = REPO_ROOT / "terraform"
TFVARS_EXAMPLE = TERRAFORM_DIR / "terraform.tfvars.example"
_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)")


class HclError(ValueError):
    """An expression outside the subset `evaluate` reads."""


# --- loading ---------------------------------------------------------------------


@functools.cache
def load() -> dict[str, Any]:
    """terraform/*.tf merged: {"variable": {name: body}, "locals": {name: expression}}."""
    merged: dict[str, Any] = {"variable": {}, "locals": {}}
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        with path.open() as handle:
            document = hcl2.load(handle, serialization_options=_OPTIONS)
        for block in document.get("variable", []):
            merged["variable"].update(block)
        for block in document.get("locals", []):
            merged["locals"].update(block)
    return merged


def aliases(field_name: str) -> list[str]:
    """The environment variables a field is read from, first the main one."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def environment_expressions() -> dict[str, str]:
    """Environment variable => the HCL expression of its value (a secret: its version)."""
    locals_ = load()["locals"]
    plain = {**locals_["required_environment"], **locals_["optional_environment"]}
    secrets = {name: secret["version"] for name, secret in locals_["secret_environment"].items()}
    return {name: str(expression) for name, expression in {**plain, **secrets}.items()}


def variables_of(expression: str) -> list[str]:
    """The Terraform variables an expression reads, in order."""
    return list(dict.fromkeys(_VAR_REF.findall(expression)))


def setting_variables() -> dict[str, list[str]]:
    """Settings field => the Terraform variables its value comes from (empty: computed by Terraform)."""
    by_alias = {alias: name for name in Settings.model_fields for alias in aliases(name)}
    fields: dict[str, list[str]] = {}
    for variable, expression in environment_expressions().items():
        if variable in by_alias:
            fields.setdefault(by_alias[variable], []).extend(variables_of(expression))
    return fields


def missing_settings() -> list[str]:
    """Fields that reach no function and are not declared local-only."""
    reached = setting_variables()
    return [name for name in Settings.model_fields if name not in reached and name not in LOCAL_ONLY]


# --- what a new setting needs ---------------------------------------------------------


def _hcl_type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is not None and type(None) in get_args(annotation):  # X | None
        (inner,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _hcl_type(inner)
    if annotation is bool:
        return "bool"
    if annotation in (int, float):
        return "number"
    if origin in (list, tuple):
        return "list(string)"
    if origin is dict:
        value = get_args(annotation)[1]
        return f"map({_hcl_type(value)})"
    return "string"


def hcl_literal(value: Any) -> str:
    """A Python value written as an HCL literal."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{json.dumps(str(key))} = {hcl_literal(item)}" for key, item in value.items())
        return "{ " + items + " }"
    return json.dumps(str(value))


def _bounds_condition(field_name: str, variable: str) -> str | None:
    parts = []
    for rule in Settings.model_fields[field_name].metadata:
        for kind, operator in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(rule, kind, None)
            if isinstance(rule, annotated_types.BaseMetadata) and bound is not None:
                parts.append(f"var.{variable} {operator} {hcl_literal(bound)}")
    if parts and Settings.model_fields[field_name].annotation is int:
        parts.append(f"floor(var.{variable}) == var.{variable}")
    return " && ".join(parts) or None


def how_to_add(field_name: str) -> str:
    """What to add to terraform/ (or shared/config.py) so that the field reaches the cloud."""
    field = Settings.model_fields[field_name]
    alias = aliases(field_name)[0]
    default = field.get_default(call_default_factory=True)
    kind = _hcl_type(field.annotation)
    if isinstance(default, SecretStr):
        return (
            f"Settings.{field_name} ({alias}) is a credential that reaches no cloud function. Add a secret to "
            f"local.secret_ids and local.secret_environment in terraform/secrets.tf ({alias} = {{secret, version}}: "
            "generated with random_password, or a *_version variable the operator pins), name it in "
            "local.function_secret_variables for the functions that read it, and state its production rule "
            "in Settings.production_problems(); or list it in shared.config.LOCAL_ONLY with the reason."
        )
    value = f"tostring(var.{field_name})" if kind in ("number", "bool") else f"var.{field_name}"
    if kind == "list(string)":
        value = f'join(",", var.{field_name})'
    elif kind.startswith("map("):
        value = f'length(var.{field_name}) == 0 ? "" : jsonencode(var.{field_name})'
    bounds = _bounds_condition(field_name, field_name)
    validation = (
        f"\n\n  validation {{\n    condition     = {bounds}\n"
        f'    error_message = "{field_name} must be ... (the bounds of Settings.{field_name})."\n  }}'
        if bounds
        else ""
    )
    description = (field.description or field_name).rstrip(".").replace('"', '\\"').replace("`", "")
    return (
        f"Settings.{field_name} ({alias}) reaches no cloud function. Add to terraform/variables.tf:\n\n"
        f'variable "{field_name}" {{\n  description = "{description} (Settings.{field_name})."\n'
        f"  type        = {kind}\n  default     = {hcl_literal(default)}{validation}\n}}\n\n"
        f"and to local.required_environment in terraform/functions.tf (local.optional_environment "
        f"when an empty value must leave the Settings default):\n\n    {alias} = {value}\n\n"
        "then `python -m infra.terraform_settings --write` (terraform.tfvars.example). "
        "Or, if no deployment may set it, list it in shared.config.LOCAL_ONLY with the reason."
    )


# --- evaluating HCL ---------------------------------------------------------------------


def _string_end(text: str, start: int) -> int:
    """The index after the string literal that starts at `start`."""
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    raise HclError(f"unterminated string in {text!r}")


def _closing(text: str, start: int) -> int:
    """The index of the bracket closing the one at `start`."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    depth = []
    index = start
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
            continue
        if char in pairs:
            depth.append(pairs[char])
        elif char in pairs.values():
            if not depth or depth.pop() != char:
                raise HclError(f"unbalanced brackets in {text!r}")
            if not depth:
                return index
        index += 1
    raise HclError(f"unbalanced brackets in {text!r}")


def _top_level(text: str, wanted: str) -> int | None:
    """The first index of `wanted` outside strings and brackets."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
            continue
        if char in "([{":
            index = _closing(text, index) + 1
            continue
        if text.startswith(wanted, index):
            return index
        index += 1
    return None


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SYMBOLS = {"&&": " and ", "||": " or ", "==": "==", "!=": "!=", ">=": ">=", "<=": "<="}


def _python(expression: str) -> str:
    """An HCL expression of the supported subset as a Python expression."""
    text = expression.strip()
    question = _top_level(text, "?")
    if question is not None:
        rest = text[question + 1 :]
        colon = _top_level(rest, ":")
        if colon is None:
            raise HclError(f"conditional without ':' in {text!r}")
        condition, then, otherwise = text[:question], rest[:colon], rest[colon + 1 :]
        return f"(({_python(then)}) if ({_python(condition)}) else ({_python(otherwise)}))"
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            end = _string_end(text, index)
            if "${" in text[index:end]:
                raise HclError(f"string templates are not supported: {text!r}")
            out.append(text[index:end])
            index = end
        elif text.startswith("[for ", index):
            end = _closing(text, index)
            head_and_body = text[index + 5 : end]
            colon = _top_level(head_and_body, ":")
            if colon is None:
                raise HclError(f"for expression without ':' in {text!r}")
            names, _, collection = head_and_body[:colon].partition(" in ")
            helper = "_pairs" if "," in names else "_values"
            body = head_and_body[colon + 1 :]
            condition = _top_level(body, " if ")
            keep = f" if ({_python(body[condition + 4 :])})" if condition is not None else ""
            if condition is not None:
                body = body[:condition]
            out.append(f"[({_python(body)}) for {names.strip()} in {helper}({_python(collection)}){keep}]")
            index = end + 1
        elif char in "([":
            end = _closing(text, index)
            out.append(char + _python(text[index + 1 : end]) + text[end])
            index = end + 1
        elif char == ",":
            out.append(", ")
            index += 1
        elif text[index : index + 2] in _SYMBOLS:
            out.append(_SYMBOLS[text[index : index + 2]])
            index += 2
        elif char == "!":
            out.append(" not ")
            index += 1
        elif char in "<>+-*/%":
            out.append(char)
            index += 1
        elif char.isspace():
            out.append(" ")
            index += 1
        elif match := _NUMBER.match(text, index):
            out.append(match.group())
            index = match.end()
        elif match := _WORD.match(text, index):
            word = match.group()
            index = match.end()
            if word.startswith("var."):
                out.append(f"var[{word[4:]!r}]")
            elif word.startswith("local."):
                out.append(f"local({word[6:]!r})")
            elif word in ("true", "false", "null"):
                out.append({"true": "True", "false": "False", "null": "None"}[word])
            elif word == "can":  # can(X) evaluates X only inside the call
                end = _closing(text, index)
                out.append(f"_can(lambda: {_python(text[index + 1 : end])})")
                index = end + 1
            elif word in _FUNCTIONS or "." not in word:
                out.append(word)
            else:
                raise HclError(f"{word} is not supported in {text!r}")
        else:
            raise HclError(f"{char!r} is not supported in {text!r}")
    return "".join(out)


def _regex(pattern: str, value: str) -> Any:
    match = re.search(pattern, value)
    if match is None:
        raise ValueError(f"{value!r} does not match {pattern!r}")
    return match.group()


def _tostring(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _can(thunk: Callable[[], Any]) -> bool:
    try:
        thunk()
    except (ValueError, TypeError, KeyError):
        return False
    return True


def _pairs(collection: Any) -> Iterable[tuple[Any, Any]]:
    return collection.items() if isinstance(collection, Mapping) else enumerate(collection)


def _values(collection: Any) -> Iterable[Any]:
    return collection.values() if isinstance(collection, Mapping) else collection


def _jsonencode(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_FUNCTIONS: dict[str, Any] = {
    "alltrue": lambda items: all(items),
    "anytrue": lambda items: any(items),
    "contains": lambda items, value: value in items,
    "floor": math.floor,
    "ceil": math.ceil,
    "length": len,
    "regex": _regex,
    "regexall": lambda pattern, value: re.findall(pattern, value),
    "tostring": _tostring,
    "join": lambda separator, items: separator.join(items),
    "jsonencode": _jsonencode,
    "keys": lambda mapping: sorted(mapping),
    "values": lambda mapping: [mapping[key] for key in sorted(mapping)],
    "lower": str.lower,
    "upper": str.upper,
    "min": min,
    "max": max,
    "concat": lambda *lists: [item for items in lists for item in items],
    "lookup": lambda mapping, key, default: mapping.get(key, default),
}


def evaluate(expression: Any, variables: Mapping[str, Any], known: Mapping[str, Any] | None = None) -> Any:
    """The value of a parsed HCL value for these variable values.

    Locals are evaluated as needed; `known` gives the value of locals that depend on
    resources (which do not exist offline). HclError: outside the supported subset.
    """
    known = known or {}
    if isinstance(expression, Mapping):
        return {key: evaluate(value, variables, known) for key, value in expression.items()}
    if isinstance(expression, list):
        return [evaluate(value, variables, known) for value in expression]
    if not isinstance(expression, str):
        return expression
    match = re.fullmatch(r"\$\{(.*)\}", expression, flags=re.DOTALL)
    if match is None:
        if "${" in expression:
            raise HclError(f"string templates are not supported: {expression!r}")
        return expression
    locals_ = load()["locals"]

    def local(name: str) -> Any:
        if name in known:
            return known[name]
        if name not in locals_:
            raise HclError(f"local.{name} is not defined")
        return evaluate(locals_[name], variables, known)

    namespace = {**_FUNCTIONS, "_can": _can, "_pairs": _pairs, "_values": _values}
    namespace.update(var=dict(variables), local=local)
    code = _python(match.group(1))
    return eval(code, {"__builtins__": {}, **namespace})  # noqa: S307 - our own HCL, parsed above


def defaults(**overrides: Any) -> dict[str, Any]:
    """Every variable's default (None when required), with `overrides`."""
    values = {name: body.get("default") for name, body in load()["variable"].items()}
    return {**values, **overrides}


def rejections(name: str, value: Any) -> list[str]:
    """The error messages of the validations of variable `name` that `value` fails."""
    values = defaults(**{name: value})
    return [
        check["error_message"]
        for check in load()["variable"][name].get("validation", [])
        if not evaluate(check["condition"], values)
    ]


def _known_offline(expression: Any, variables: Mapping[str, Any]) -> Any:
    try:
        return evaluate(expression, variables)
    except HclError:
        return None  # computed from resources: known at apply only


def environment(variables: Mapping[str, Any]) -> dict[str, str | None]:
    """The plain environment every function gets for these variable values.

    Empty optional values are left out; None: computed from resources (known at apply).
    """
    locals_ = load()["locals"]
    required = {
        name: _known_offline(value, variables) for name, value in locals_["required_environment"].items()
    }
    optional = {
        name: _known_offline(value, variables) for name, value in locals_["optional_environment"].items()
    }
    return {
        **{name: None if value is None else str(value) for name, value in required.items()},
        **{name: str(value) for name, value in optional.items() if value != ""},
    }


def mounted_secrets(variables: Mapping[str, Any]) -> dict[str, list[str]]:
    """Function => the secret environment variables it mounts for these variable values."""
    locals_ = load()["locals"]
    known = {"secret_environment": dict.fromkeys(locals_["secret_environment"])}
    configured = evaluate(locals_["configured_secret_variables"], variables, known)
    per_function = evaluate(locals_["function_secret_variables"], variables, known)
    return {
        function: [name for name in names if name in configured] for function, names in per_function.items()
    }


# --- terraform.tfvars.example -------------------------------------------------------------

# Shown set rather than commented out: what every deployment must write.
_EXAMPLE_VALUES = {
    "project_id": ('"my-analytics-project"', ""),
    "openwebui_database_url_version": ('"1"', "not a default: set once the version exists"),
    "openai_api_key_version": ('"1"', 'not a default: "" only with estimator = "heuristic"'),
}
_FIRST = ("project_id", "region", "name_prefix", "labels")


def _grouped_variables() -> Iterator[tuple[str, list[str]]]:
    variables = list(load()["variable"])
    fed = setting_variables()
    placed: set[str] = set(_FIRST)
    yield "project", list(_FIRST)
    for title, fields in setting_groups():
        names = [
            variable
            for field_name in fields
            for variable in fed.get(field_name, [])
            if variable in variables and variable not in placed and not placed.add(variable)  # type: ignore[func-returns-value]
        ]
        if names:
            yield title, names
    rest = [variable for variable in variables if variable not in placed]
    yield "deployment only (no setting of the app)", rest


def render_tfvars_example() -> str:
    """terraform/terraform.tfvars.example, grouped like the README's settings table."""
    lines = [
        "# Copy to terraform.tfvars and adjust; do not commit the copy (it names your project",
        "# and pins your secret versions). Every commented line shows the default; groups follow",
        "# the README's settings table. Generated by `python -m infra.terraform_settings --write`",
        "# from terraform/variables.tf (tests/test_terraform.py fails when it is stale).",
    ]
    variables = load()["variable"]
    for title, names in _grouped_variables():
        lines += ["", f"# --- {title} " + "-" * max(3, 84 - len(title))]
        for name in names:
            body = variables[name]
            lines.append("")
            lines += textwrap.wrap(
                str(body["description"]), width=92, initial_indent="# ", subsequent_indent="#   "
            )
            if name in _EXAMPLE_VALUES:
                value, note = _EXAMPLE_VALUES[name]
                lines.append(f"{name} = {value}" + (f" # {note}" if note else ""))
            else:
                lines.append(f"# {name} = {hcl_literal(body.get('default'))}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if "--write" in sys.argv:
        TFVARS_EXAMPLE.write_text(render_tfvars_example(), encoding="utf-8")
    else:
        print(render_tfvars_example(), end="")
