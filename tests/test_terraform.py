"""Offline validation of terraform/: no terraform binary, no cloud.

The configuration is parsed with python-hcl2 and cross-checked against the code it
deploys (main.py's entry points, shared.config.Settings), then scanned by checkov
from its own virtual environment (infra/checkov.py).
"""

from __future__ import annotations

import ast
import enum
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pydantic
import pytest
from pydantic import AliasChoices, SecretStr

from infra import terraform_settings
from infra.checkov import run_checkov
from infra.readme_settings import setting_groups
from infra.terraform_settings import TFVARS_EXAMPLE, render_tfvars_example
from shared.config import LOCAL_ONLY, Settings
from shared.queue import TARGETS
from tests.archive_support import excluder, shipped_files, source_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"
TF_FILES = sorted(TERRAFORM_DIR.glob("*.tf"))

ENTRY_POINTS = {"dispatch", "analyze", "aggregate", "api"}
# Functions Cloud Tasks delivers to; their timeout must fit the dispatch deadline.
TASK_TARGETS = set(TARGETS)
# Production values that deliberately differ from the Settings defaults.
INTENTIONAL_DEFAULT_DIFFERENCES = {
    # "auto" would quietly fall back to the heuristic if the key went missing;
    # a production deployment pins the LLM so that it fails loudly instead.
    "ANALYTICS_ESTIMATOR",
}

_HCL_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)")
# "${var.x}" or "${tostring(var.x)}": a value Terraform passes through unchanged.
_PLAIN_VAR = re.compile(r"^\$\{(?:tostring\()?var\.([A-Za-z_][A-Za-z0-9_]*)\)?\}$")
_SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<check>[^:\s]+)(?::(?P<reason>.*))?$")
# Inside a for_each block: each.key, each.value.NAME.
_EACH_REF = re.compile(r"\beach\.(?:key\b|value\.([A-Za-z_][A-Za-z0-9_]*))")


# --- loading ----------------------------------------------------------------------


@functools.cache
def _parsed(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=_HCL_OPTIONS)


@functools.cache
def _config() -> dict[str, Any]:
    """All .tf files merged: {"variable": {name: body}, "locals": {...}, "resource": {type: {name: body}}, ...}."""
    merged: dict[str, Any] = {
        "variable": {},
        "locals": {},
        "resource": {},
        "data": {},
        "output": {},
        "moved": [],
    }
    for path in TF_FILES:
        document = _parsed(path)
        merged["moved"].extend(document.get("moved", []))
        for block in document.get("variable", []):
            merged["variable"].update(block)
        for block in document.get("output", []):
            merged["output"].update(block)
        for block in document.get("locals", []):
            duplicates = merged["locals"].keys() & block.keys()
            assert not duplicates, f"{path.name} redefines locals {sorted(duplicates)}"
            merged["locals"].update(block)
        for kind in ("resource", "data"):
            for block in document.get(kind, []):
                for type_name, instances in block.items():
                    merged[kind].setdefault(type_name, {}).update(instances)
    return merged


def _resources(type_name: str) -> dict[str, dict[str, Any]]:
    return _config()["resource"].get(type_name, {})


def _local(name: str) -> Any:
    locals_ = _config()["locals"]
    assert name in locals_, f"terraform/ defines no local.{name}"
    return locals_[name]


def _variable_default(name: str) -> Any:
    return _config()["variable"][name].get("default")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a parsed value (expressions are strings too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _normalised(expression: str) -> str:
    return re.sub(r"\s+", "", expression)


def _function_resource() -> dict[str, Any]:
    """The one google_cloudfunctions2_function block, whose for_each makes the four functions."""
    resources = _resources("google_cloudfunctions2_function")
    assert set(resources) == {"function"}, (
        f"expected one for_each resource google_cloudfunctions2_function.function, found {sorted(resources)}"
    )
    body = resources["function"]
    assert body["for_each"] == "${local.functions}"
    return body


def _hcl_literal(value: Any) -> str:
    """A parsed value written back as an HCL operand."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{(.*)\}", value, flags=re.DOTALL)
        return f"({match.group(1)})" if match else '"' + value + '"'
    raise AssertionError(f"cannot substitute {value!r} into an expression")


def _for_key(expression: Any, key: str) -> Any:
    """An expression of the for_each block as it reads for one key of local.functions.

    A whole "${each.key}" or "${each.value.NAME}" becomes that value itself; in a longer
    expression each.key and each.value.NAME are replaced by HCL literals.
    """
    settings = _local("functions")[key]
    if not isinstance(expression, str):
        return expression

    def value(name: str | None) -> Any:
        if name is None:
            return key
        assert name in settings, f"each.value.{name} is not set for {key!r} in local.functions"
        return settings[name]

    whole = re.fullmatch(r"\$\{" + _EACH_REF.pattern + r"\}", expression)
    if whole:
        return value(whole.group(1))
    return _EACH_REF.sub(lambda match: _hcl_literal(value(match.group(1))), expression)


_GUARD = re.compile(r'(?P<guard>!true|!false|"(?P<left>\w+)"(?P<op>==|!=)"(?P<right>\w+)")\|\|(?P<rest>.+)')


def _effective_condition(condition: str) -> str | None:
    """A normalised precondition once its constant guard is folded: "${!true||X}" -> "${X}".

    None when the guard makes it hold regardless ("${!false||X}"): the check does not apply.
    """
    match = _GUARD.fullmatch(condition[2:-1]) if condition.startswith("${") else None
    if not match:
        return condition
    if match.group("op"):
        holds = (match.group("left") == match.group("right")) == (match.group("op") == "==")
    else:
        holds = match.group("guard") == "!false"
    return None if holds else "${" + match.group("rest") + "}"


def _functions() -> dict[str, dict[str, Any]]:
    """Cloud Functions by entry point: the for_each block evaluated for each key of local.functions."""
    body = _function_resource()
    functions: dict[str, dict[str, Any]] = {}
    for key in _local("functions"):
        entry_point = _for_key(body["build_config"][0]["entry_point"], key)
        assert isinstance(entry_point, str) and "${" not in entry_point, (
            f"{key}: entry point {entry_point!r} is not known offline"
        )
        assert entry_point not in functions, f"two functions share entry point {entry_point!r}"
        service = body["service_config"][0]
        functions[entry_point] = {
            "key": key,
            "ingress_settings": _for_key(service["ingress_settings"], key),
            "timeout_seconds": _for_key(service["timeout_seconds"], key),
            # The checks that apply to this function, guards folded away.
            "preconditions": [
                condition
                for check in body["lifecycle"][0]["precondition"]
                if (condition := _effective_condition(_normalised(_for_key(check["condition"], key))))
            ],
        }
    return functions


# --- Settings ----------------------------------------------------------------------


def _aliases(field_name: str) -> list[str]:
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def _settings_field_by_alias() -> dict[str, str]:
    return {alias: name for name in Settings.model_fields for alias in _aliases(name)}


def _plain_environment() -> dict[str, str]:
    """Environment variables Terraform sets in every function, name => HCL expression."""
    return {**_local("required_environment"), **_local("optional_environment")}


def _secret_environment() -> dict[str, dict[str, str]]:
    return _local("secret_environment")


def _resolved(expression: Any) -> str | None:
    """The value an expression takes with the variable defaults, when that is knowable offline."""
    if not isinstance(expression, str):
        return str(expression)
    if "${" not in expression:
        return expression
    match = _PLAIN_VAR.match(expression)
    if match:
        default = _variable_default(match.group(1))
        return None if default is None else str(default)
    return None


# --- tests: the files ----------------------------------------------------------------


def test_terraform_directory_is_split_by_concern():
    names = {path.name for path in TF_FILES}
    expected = {
        "versions.tf",
        "variables.tf",
        "outputs.tf",
        "apis.tf",
        "sql.tf",
        "secrets.tf",
        "iam.tf",
        "functions.tf",
        "tasks.tf",
        "scheduler.tf",
    }
    assert expected <= names, f"missing: {sorted(expected - names)}"
    for companion in ("README.md", "terraform.tfvars.example", "openwebui_readonly_role.sql"):
        assert (TERRAFORM_DIR / companion).is_file(), f"terraform/{companion} is missing"


@pytest.mark.parametrize("path", TF_FILES, ids=lambda path: path.name)
def test_every_tf_file_parses(path):
    document = _parsed(path)
    assert document, f"{path.name} is empty"


def test_tfvars_example_parses_and_names_declared_variables():
    with TFVARS_EXAMPLE.open() as handle:
        values = hcl2.load(handle, serialization_options=_HCL_OPTIONS)
    variables = _config()["variable"]
    undeclared = set(values) - set(variables)
    assert not undeclared, f"terraform.tfvars.example sets undeclared variables {sorted(undeclared)}"
    assert "project_id" in values
    # Generated, grouped like the README's settings table, every variable once.
    assert TFVARS_EXAMPLE.read_text() == render_tfvars_example(), (
        "terraform/terraform.tfvars.example is stale: run `python -m infra.terraform_settings --write`"
    )
    text = TFVARS_EXAMPLE.read_text()
    shown = dict(re.findall(r"^#? ?(\w+) = (.+?)(?: # .*)?$", text, flags=re.MULTILINE))
    assert set(shown) == set(variables), f"not shown: {sorted(set(variables) - set(shown))}"
    # Commented-out assignments document the defaults: they must be the defaults.
    for name, value in re.findall(r"^# (\w+) = (.+)$", text, flags=re.MULTILINE):
        parsed = hcl2.loads(f"shown = {value}\n", serialization_options=_HCL_OPTIONS)["shown"]
        assert parsed == variables[name].get("default"), (
            f"{name}: the example shows {parsed!r}, the default differs"
        )
    groups = re.findall(r"^# --- (.+?) -+$", text, flags=re.MULTILINE)
    readme_groups = [title for title, _ in setting_groups()]
    assert [title for title in groups if title in readme_groups] == [
        title for title in readme_groups if title in groups
    ], "the example's groups are not in the README's order"


def test_provider_ranges():
    (terraform_block,) = _parsed(TERRAFORM_DIR / "versions.tf")["terraform"]
    providers = {}
    for block in terraform_block["required_providers"]:
        providers.update(block)
    assert set(providers) >= {"google", "google-beta", "archive", "random"}
    for name in ("google", "google-beta"):
        assert ">= 6" in providers[name]["version"], f"{name} must be >= 6: {providers[name]['version']}"


def test_every_variable_is_documented():
    for name, body in _config()["variable"].items():
        assert str(body.get("description", "")).strip(), f"variable {name!r} has no description"
        assert "type" in body, f"variable {name!r} has no type"


@pytest.mark.parametrize(
    "name", ["region", "schedule", "time_zone", "llm_rpm", "project_id", "db_version", "name_prefix"]
)
def test_error_prone_variables_are_validated(name):
    assert _config()["variable"][name].get("validation"), f"variable {name!r} has no validation block"


def test_variables_and_locals_are_declared_and_used():
    declared_variables = set(_config()["variable"])
    declared_locals = set(_config()["locals"])
    used_variables: set[str] = set()
    used_locals: set[str] = set()
    for path in TF_FILES:
        document = _parsed(path)
        for kind, blocks in document.items():
            if kind == "variable":
                # A validation refers to its own variable; that is not a use.
                for block in blocks:
                    for body in block.values():
                        for text in _strings(body.get("default")):
                            used_variables.update(_VAR_REF.findall(text))
                continue
            for text in _strings(blocks):
                used_variables.update(_VAR_REF.findall(text))
                used_locals.update(_LOCAL_REF.findall(text))
    assert used_variables <= declared_variables, f"undeclared: {sorted(used_variables - declared_variables)}"
    assert declared_variables <= used_variables, f"unused: {sorted(declared_variables - used_variables)}"
    assert used_locals <= declared_locals, f"undefined locals: {sorted(used_locals - declared_locals)}"
    assert declared_locals <= used_locals, f"unused locals: {sorted(declared_locals - used_locals)}"


# --- tests: the code Terraform deploys ---------------------------------------------------


def test_functions_use_the_four_entry_points_and_one_source():
    functions = _functions()
    assert set(functions) == ENTRY_POINTS
    # One block serves all four, so what it does not take from each.* is the same for all.
    build = _function_resource()["build_config"][0]
    assert build["runtime"] == "${var.function_runtime}"
    storage = build["source"][0]["storage_source"][0]
    assert storage["object"] == "${google_storage_bucket_object.source.name}"
    assert set(_config()["variable"]["function_runtime"]["validation"][0]["condition"].split('"')) >= {
        "python311",
        "python312",
    }


def test_entry_points_exist_in_main_py():
    main_py = REPO_ROOT / "main.py"
    if not main_py.is_file():
        pytest.fail(f"main.py does not exist; Terraform deploys entry points {sorted(ENTRY_POINTS)} from it")
    tree = ast.parse(main_py.read_text(), filename=str(main_py))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert _functions(), "terraform/functions.tf deploys no function"
    missing = set(_functions()) - defined
    assert not missing, (
        f"main.py lacks the entry points {sorted(missing)} that terraform/functions.tf deploys"
    )


def _runtime_file(relative: str) -> bool:
    return relative in {"main.py", "requirements.txt"} or relative.startswith(
        ("functions/", "shared/", "migrations/")
    )


def test_source_archive_holds_only_the_runtime_files():
    assert source_dir() == REPO_ROOT  # ${path.module}/..
    matches, excluded = excluder()
    assert not matches("."), "an exclude matches the repository root: the archive would be empty"
    for kept in (
        "main.py",
        "requirements.txt",
        "functions/analyze.py",
        "shared/config.py",
        "migrations/001.sql",
    ):
        assert not excluded(kept), f"{kept} would be left out of the function source"
    for dropped in (
        "tests/test_x.py",
        "bench/run.py",
        "infra/checkov.py",
        "terraform/sql.tf",
        ".venv/bin/python",
        ".env",
        "shared/__pycache__/config.cpython-311.pyc",
    ):
        assert excluded(dropped), f"{dropped} would be shipped"

    shipped = shipped_files()
    assert "requirements.txt" in shipped
    leaks = [path for path in shipped if not _runtime_file(path)]
    assert not leaks, f"the function source would contain non-runtime files (extend the excludes): {leaks}"


def test_shipped_code_does_not_import_what_is_left_out():
    # infra/, tests/ and bench/ are not deployed: runtime modules may import them
    # only lazily, inside a function that production never calls.
    left_out = {"infra", "tests", "bench"}
    offenders = []
    for relative in shipped_files():
        if not relative.endswith(".py"):
            continue
        tree = ast.parse((REPO_ROOT / relative).read_text(), filename=relative)
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders.extend(
                f"{relative}:{node.lineno} imports {module}"
                for module in modules
                if module.split(".")[0] in left_out
            )
    assert not offenders, "module-level imports of code the archive leaves out:\n" + "\n".join(offenders)


def test_source_object_is_named_after_the_archive_hash():
    obj = _resources("google_storage_bucket_object")["source"]
    assert "data.archive_file.source.output_sha256" in obj["name"]
    assert obj["source"] == "${data.archive_file.source.output_path}"


def test_environment_variables_are_settings_aliases():
    aliases = _settings_field_by_alias()
    names = set(_plain_environment()) | set(_secret_environment())
    unknown = sorted(names - aliases.keys())
    assert not unknown, f"Terraform sets variables that Settings does not read: {unknown}"


def test_every_function_gets_the_checked_environment():
    # The other tests read the environment from these locals; make sure the
    # functions really use them (and nothing else).
    assert _normalised(_local("environment")) == _normalised(
        "${merge(local.required_environment, {for name, value in local.optional_environment"
        ' : name => value if value != ""})}'
    )
    service = _function_resource()["service_config"][0]
    assert service["environment_variables"] == "${local.environment}"
    assert "secret_environment_variables" not in service, "mount secrets via the dynamic block"
    (dynamic,) = service["dynamic"]
    block = dynamic["secret_environment_variables"]
    # Each function mounts its own entry of local.function_secrets, keyed like local.functions.
    assert block["for_each"] == "${local.function_secrets[each.key]}"
    assert set(_local("function_secret_variables")) == set(_local("functions"))
    content = block["content"][0]
    assert content["key"] == "${secret_environment_variables.key}"
    assert content["version"] == "${secret_environment_variables.value.version}"


def test_every_function_is_sized_and_named_by_its_own_key():
    # The per-function maps the block indexes with each.key have exactly its keys:
    # a function missing from one would fail at plan, an extra entry deploy nothing.
    keys = set(_local("functions"))
    assert keys == ENTRY_POINTS
    body = _function_resource()
    service = body["service_config"][0]
    assert body["name"] == "${local.function_names[each.key]}"
    assert _normalised(_local("function_names")) == _normalised(
        '${{for key in keys(local.functions) : key => "${var.name_prefix}-${key}"}}'
    )
    assert service["service_account_email"] == "${google_service_account.function[each.key].email}"
    # for_each over the literal map rather than local.function_names (a for expression):
    # checkov expands the former per function, the latter not at all.
    assert _resources("google_service_account")["function"]["for_each"] == "${local.functions}"
    assert (
        _resources("google_project_iam_member")["function_cloudsql_client"]["for_each"]
        == "${local.functions}"
    )
    assert service["max_instance_count"] == "${local.max_instances[each.key]}"
    assert _normalised(_local("max_instances")) == _normalised(
        "${merge(local.max_instances_fixed, {analyze = local.analyzer_max_instances})}"
    )
    assert set(_local("max_instances_fixed")) | {"analyze"} == keys
    # The connection budget counts one request per instance.
    assert service["max_instance_request_concurrency"] == 1
    for key, settings in _local("functions").items():
        assert str(settings.get("description", "")).strip(), f"{key} has no description"


def test_renamed_functions_keep_their_deployed_instances():
    # The functions and the platform service accounts were single resources before
    # they became for_each instances; moved blocks carry existing state over
    # instead of destroying and recreating them.
    moves = {(move["from"], move["to"]) for move in _config()["moved"]}
    for key in _local("functions"):
        assert (
            f"${{google_cloudfunctions2_function.{key}}}",
            f'${{google_cloudfunctions2_function.function["{key}"]}}',
        ) in moves, f"no moved block for the {key} function"
    platform = _resources("google_service_account")["platform"]["for_each"]
    for old, key in (("tasks_invoker", "tasks"), ("scheduler_invoker", "scheduler"), ("build", "build")):
        assert key in platform, f"google_service_account.platform has no {key!r}"
        assert (
            f"${{google_service_account.{old}}}",
            f'${{google_service_account.platform["{key}"]}}',
        ) in moves
    # Every move leads to an address that exists.
    for _, target in moves:
        match = re.fullmatch(r'\$\{(\w+)\.(\w+)\["(\w+)"\]\}', target)
        assert match, f"unexpected moved target {target}"
        type_name, name, key = match.groups()
        for_each = _resources(type_name)[name]["for_each"]
        keys = _local("functions") if for_each == "${local.functions}" else for_each
        assert key in keys, f"moved to {target}, which the configuration does not create"


def test_secret_versions_are_pinned_numbers():
    for name, secret in _secret_environment().items():
        version = secret["version"]
        generated = re.fullmatch(
            r"\$\{(?:var\.\w+ \? )?google_secret_manager_secret_version\.\w+(?:\[0\])?\.version(?: : \"\")?\}",
            version,
        )
        provided = re.fullmatch(r"\$\{var\.(\w+_version)\}", version)
        assert generated or provided, f"{name}: version {version!r} is neither a created version nor a pin"
        if provided:
            variable = _config()["variable"][provided.group(1)]
            condition = variable["validation"][0]["condition"]
            assert "[1-9][0-9]*" in condition, f"{provided.group(1)} must only accept version numbers"
            assert not re.fullmatch(r"^([1-9][0-9]*)?$", "latest")


def test_terraform_satisfies_production_settings(monkeypatch):
    """Settings built from exactly what Terraform sets has no production problem."""
    aliases = _settings_field_by_alias()
    for alias in aliases:
        monkeypatch.delenv(alias, raising=False)

    environment = terraform_settings.environment(terraform_settings.defaults(project_id="my-project"))
    # Values computed from resources are known at apply only.
    values = {name: value or f"dummy-{name.lower()}" for name, value in environment.items()}
    for name in _secret_environment():
        # Operator secrets count once their version is pinned (the first-run checklist).
        values[name] = f"{name.lower()}-dummy-0123456789abcdef0123456789abcdef"

    assert values["ANALYTICS_ENVIRONMENT"] == "production"
    assert values["ANALYTICS_QUEUE_BACKEND"] == "cloud_tasks"
    settings = Settings(**values)  # raises ConfigurationError on a production problem
    assert settings.production_problems() == []

    # Not vacuous: without the secrets Terraform mounts, production refuses to start.
    bare = {name: value for name, value in values.items() if name not in _secret_environment()}
    bare["ANALYTICS_ENVIRONMENT"] = "local"
    assert Settings(**bare).production_problems()


def test_every_function_mounts_the_secrets_production_needs():
    required = {
        "COGNIFORCE_DATABASE_URL",
        "OPENWEBUI_DATABASE_URL",
        "ANALYTICS_HMAC_KEY",
        "ANALYTICS_DASHBOARD_PASSWORD",
    }
    pipeline = set(_local("pipeline_secret_variables"))
    assert required | {"OPENAI_API_KEY"} <= pipeline
    per_function = _local("function_secret_variables")
    assert set(per_function) == ENTRY_POINTS
    for entry_point in ENTRY_POINTS - {"api"}:
        assert per_function[entry_point] == "${local.pipeline_secret_variables}", entry_point


def test_plain_defaults_match_settings_defaults(monkeypatch):
    """What Terraform's defaults give each function is what Settings gives without it."""
    for alias in _settings_field_by_alias():
        monkeypatch.delenv(alias, raising=False)
    environment = terraform_settings.environment(terraform_settings.defaults(project_id="my-project"))
    fed = terraform_settings.setting_variables()
    fields = _settings_field_by_alias()
    deployed = Settings(
        **{**{k: v for k, v in environment.items() if v is not None}, "ANALYTICS_ENVIRONMENT": "local"}
    )
    compared = []
    for name, value in environment.items():
        field_name = fields[name]
        if value is None or not fed[field_name] or name in INTENTIONAL_DEFAULT_DIFFERENCES:
            continue  # computed by Terraform, or a production choice
        if field_name in ("environment", "queue_backend", "log_format", "gcp_project"):
            continue  # what a cloud deployment is, not a default
        default = Settings.model_fields[field_name].get_default(call_default_factory=True)
        assert getattr(deployed, field_name) == default, (
            f"{name}: Terraform's default gives {getattr(deployed, field_name)!r}, Settings says {default!r}"
        )
        compared.append(field_name)
    assert {"pii_regions", "calibration", "min_group_size", "llm_timeout_seconds", "migrate_on_start"} <= set(
        compared
    )


def test_schedule_defaults_equal_settings_defaults():
    assert _variable_default("time_zone") == Settings.model_fields["timezone"].default
    assert _variable_default("schedule") == Settings.model_fields["schedule"].default
    job = _resources("google_cloud_scheduler_job")["nightly"]
    assert job["schedule"] == "${var.schedule}"
    assert job["time_zone"] == "${var.time_zone}"


def test_scheduler_calls_the_dispatcher_with_oidc():
    job = _resources("google_cloud_scheduler_job")["nightly"]
    target = job["http_target"][0]
    assert target["uri"] == "${local.function_urls.dispatch}"
    token = target["oidc_token"][0]
    assert token["audience"] == target["uri"]
    assert token["service_account_email"] == '${google_service_account.platform["scheduler"].email}'
    assert job["retry_config"], "the job needs a retry_config"
    assert job["attempt_deadline"] == "${local.functions.dispatch.timeout_seconds}s"
    assert _functions()["dispatch"]["timeout_seconds"] == _local("functions")["dispatch"]["timeout_seconds"]
    assert 15 <= _local("functions")["dispatch"]["timeout_seconds"] <= 1800, (
        "attempt_deadline must be 15 s - 30 min"
    )


def test_queue_rate_follows_the_llm_rate():
    assert _normalised(_local("queue_dispatches_per_second")) == "${var.llm_rpm/60}"
    assert _variable_default("llm_rpm") == Settings.model_fields["llm_rpm"].default
    queue = _resources("google_cloud_tasks_queue")["pipeline"]
    rate = queue["rate_limits"][0]
    assert rate["max_dispatches_per_second"] == "${local.queue_dispatches_per_second}"
    assert rate["max_concurrent_dispatches"] == "${local.analyzer_max_instances}"
    retry = queue["retry_config"][0]
    assert {"max_attempts", "min_backoff", "max_backoff", "max_doublings", "max_retry_duration"} <= set(retry)


def test_function_timeouts_fit_the_dispatch_deadline():
    # One deadline for Terraform and the app, which sets it on every task it creates.
    assert _local("task_dispatch_deadline_seconds") == "${var.task_deadline_seconds}"
    assert (
        _local("required_environment")["ANALYTICS_TASK_DEADLINE_SECONDS"]
        == "${tostring(var.task_deadline_seconds)}"
    )
    deadline = _variable_default("task_deadline_seconds")
    assert deadline == Settings.model_fields["task_deadline_seconds"].default
    assert 15 <= deadline <= 1800, "Cloud Tasks accepts dispatch deadlines of 15 s to 30 min"
    functions = _functions()
    assert set(functions) == ENTRY_POINTS
    for entry_point, function in functions.items():
        assert isinstance(function["timeout_seconds"], int), f"{entry_point}: timeout is not a number"
        assert function["timeout_seconds"] <= 3600, "HTTP functions time out after at most 60 minutes"
    # Task targets are marked in local.functions; the tasks invoker grant follows them.
    marked = {key for key, settings in _local("functions").items() if settings["task_target"] is True}
    assert {functions[entry_point]["key"] for entry_point in TASK_TARGETS} == marked
    assert _normalised(_local("task_targets")) == _normalised(
        "${toset([for key, function in local.functions : key if function.task_target])}"
    )
    assert (
        _resources("google_cloud_run_v2_service_iam_member")["tasks_invoke"]["for_each"]
        == "${local.task_targets}"
    )
    for entry_point in TASK_TARGETS:
        assert functions[entry_point]["timeout_seconds"] <= deadline, (
            f"{entry_point} may outlive its task's dispatch deadline"
        )
        # ... and a non-default deadline is checked at plan time, for this function.
        timeout = functions[entry_point]["timeout_seconds"]
        expected = f"${{{timeout}<=local.task_dispatch_deadline_seconds}}"
        assert expected in functions[entry_point]["preconditions"], (
            f"{entry_point} lacks the timeout <= deadline precondition"
        )


def test_every_function_checks_what_production_needs_before_deploying():
    # Mirrors Settings.production_problems() for what Terraform cannot generate itself.
    for entry_point, function in _functions().items():
        for condition in ("${local.openwebui_url_configured}", "${local.estimator_key_configured}"):
            assert condition in function["preconditions"], f"{entry_point} lacks the precondition {condition}"
    # The connection budget is checked once, on the analyzer, which gets what the others leave.
    assert "${local.db_connections_sufficient}" in _functions()["analyze"]["preconditions"]
    assert (
        _normalised(_local("db_connections_sufficient"))
        == "${local.db_connections_at_peak<=var.db_max_connections}"
    )


def test_only_the_api_is_public():
    functions = _functions()
    assert set(functions) == ENTRY_POINTS
    for entry_point, function in functions.items():
        ingress = function["ingress_settings"]
        if entry_point == "api":
            assert ingress == "ALLOW_ALL"
        else:
            assert ingress == "${var.pipeline_ingress_settings}", entry_point
    assert _variable_default("pipeline_ingress_settings") == "ALLOW_INTERNAL_ONLY"

    config = _config()["resource"]
    assert not [name for name in config if name.startswith("google_cloudfunctions2_function_iam")], (
        "grant roles/run.invoker on the Cloud Run service, not through cloudfunctions2_function_iam_*"
    )
    public = [
        (type_name, name)
        for type_name, instances in config.items()
        for name, body in instances.items()
        if body.get("member") in ("allUsers", "allAuthenticatedUsers")
    ]
    assert public == [("google_cloud_run_v2_service_iam_member", "api_public")]
    assert config["google_cloud_run_v2_service_iam_member"]["api_public"]["name"] == (
        '${google_cloudfunctions2_function.function["api"].name}'
    )


def test_sql_instance_is_protected_and_backed_up():
    instance = _resources("google_sql_database_instance")["analytics"]
    assert instance["deletion_protection"] == "${var.db_deletion_protection}"
    assert _variable_default("db_deletion_protection") is True
    settings = instance["settings"][0]
    backup = settings["backup_configuration"][0]
    assert backup["enabled"] is True
    assert backup["point_in_time_recovery_enabled"] is True
    ip = settings["ip_configuration"][0]
    assert not ip.get("authorized_networks"), "nothing may connect to the analytics database by address"
    assert ip["ssl_mode"] in ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED")


# --- tests: checkov -------------------------------------------------------------------------


def _skip_comments() -> list[tuple[str, int, str, str]]:
    """(file, line, check id, reason) of every checkov skip in terraform/."""
    skips = []
    for path in TF_FILES:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "checkov:skip" not in line:
                continue
            match = _SKIP_COMMENT.search(line.strip())
            assert match, f"{path.name}:{number}: malformed checkov skip: {line.strip()}"
            skips.append((path.name, number, match.group("check"), (match.group("reason") or "").strip()))
    return skips


def test_every_checkov_skip_has_a_reason():
    for file_name, number, check, reason in _skip_comments():
        assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), f"{file_name}:{number}: {check} is not a checkov id"
        assert len(reason) >= 20, f"{file_name}:{number}: skip of {check} needs a one-line reason"


@pytest.mark.slow  # runs checkov from its own venv (built on first use)
def test_checkov_passes():
    report = run_checkov(TERRAFORM_DIR)
    summary = report["summary"]
    results = report["results"]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in results.get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0 and summary["resource_count"] > 0

    skipped = results.get("skipped_checks", [])
    for check in skipped:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert comment.strip(), f"{check['check_id']} on {check['resource']} is skipped without a reason"
    # Every skip in the code still suppresses something: no stale skips.
    reported = {check["check_id"] for check in skipped}
    stale = {check for _, _, check, _ in _skip_comments()} - reported
    assert not stale, f"skips that no longer match a check: {sorted(stale)}"


# --- tests: every setting reaches the cloud -------------------------------------------------


def test_every_setting_reaches_the_functions_or_is_local_only():
    missing = terraform_settings.missing_settings()
    assert not missing, "\n\n".join(terraform_settings.how_to_add(name) for name in missing)
    for name, reason in LOCAL_ONLY.items():
        assert name in Settings.model_fields, f"LOCAL_ONLY names {name!r}, which is no field of Settings"
        assert len(reason) >= 20, f"LOCAL_ONLY[{name!r}] needs its reason"
        set_anyway = set(terraform_settings.aliases(name)) & set(terraform_settings.environment_expressions())
        assert not set_anyway, f"{name} is declared local-only but Terraform sets {sorted(set_anyway)}"


def test_a_new_setting_is_reported_with_what_to_add():
    """Not vacuous: the check names a field that reaches nothing, and says what to add."""
    advice = terraform_settings.how_to_add("stale_run_minutes")
    assert 'variable "stale_run_minutes"' in advice and "type        = number" in advice
    assert (
        "default     = 120" in advice
        and "var.stale_run_minutes >= 1 && var.stale_run_minutes <= 2880" in advice
    )
    assert "ANALYTICS_STALE_RUN_MINUTES = tostring(var.stale_run_minutes)" in advice
    assert "LOCAL_ONLY" in advice
    assert "secret" in terraform_settings.how_to_add("viewer_password")
    # The same advice parses as HCL and would satisfy the check.
    block = advice.split("terraform/variables.tf:\n\n", 1)[1].split("\n\nand to", 1)[0]
    parsed = hcl2.loads(block + "\n", serialization_options=_HCL_OPTIONS)["variable"][0]["stale_run_minutes"]
    assert parsed["default"] == 120 and parsed["validation"]


def test_credentials_are_secrets_mounted_only_where_read():
    plain = set(_plain_environment())
    secrets = set(_secret_environment())
    for name, field in Settings.model_fields.items():
        if name in LOCAL_ONLY or field.annotation is not SecretStr:
            continue
        aliases = set(terraform_settings.aliases(name))
        assert not aliases & plain, f"{name} is a credential: mount it as a secret, never a plain variable"
        assert aliases & secrets, f"{name} is a credential that reaches no function"
    per_function = _local("function_secret_variables")
    # The viewer password, the feedback token and Open WebUI's secret are read by the api alone.
    api_only = {"ANALYTICS_VIEWER_PASSWORD", "ANALYTICS_FEEDBACK_TOKEN", "WEBUI_SECRET_KEY"}
    mounted = terraform_settings.mounted_secrets(
        terraform_settings.defaults(viewer_role=True, feedback_role=True, webui_secret_key_version="1")
    )
    assert api_only <= set(mounted["api"])
    for function in ENTRY_POINTS - {"api"}:
        assert not api_only & set(mounted[function]), function
    assert (
        "ANALYTICS_VIEWER_PASSWORD"
        not in terraform_settings.mounted_secrets(terraform_settings.defaults())["api"]
    )
    assert per_function["dispatch"] == "${local.pipeline_secret_variables}"


def test_generated_credentials_meet_the_production_rules():
    """Terraform generates what Settings requires: long enough, one value per credential."""
    from shared.config import _MIN_SECRET_LENGTH  # the production rule itself

    passwords = _resources("random_password")
    for field_name in ("hmac_key", "dashboard_password", "viewer_password", "feedback_token"):
        assert field_name in passwords, f"no random_password.{field_name}"
        assert passwords[field_name]["length"] >= _MIN_SECRET_LENGTH[field_name], field_name
        assert passwords[field_name]["length"] >= 24, f"{field_name}: fewer than ~140 random bits"


# (field, repr(value)) Settings refuses but Terraform cannot judge, with the reason (the functions
# refuse to start and name the variable); (variable, repr(value)) Terraform refuses although
# Settings would take them.
SETTINGS_ONLY_REJECTS = {
    ("pii_regions", "('XX',)"): "the known regions are the phonenumbers library's, not Terraform's",
}
TERRAFORM_ONLY_REJECTS = {
    ("llm_rpm", "100000"): "Cloud Tasks caps a queue at 500 dispatches per second",
    ("project_id", "''"): "a deployment needs its project (Settings requires it in production)",
}


def _samples(field_name: str) -> list[Any]:
    """Values around the bounds of a field (or of its type)."""
    field = Settings.model_fields[field_name]
    explicit: dict[str, list[Any]] = {
        "pii_regions": [("HU",), ("HU", "US"), (), ("HUN",), ("XX",)],
        "currency": ["EUR", "eur", "EURO", ""],
        "hourly_rate": [None, 50, 0, 100_000, 100_001, -1, 12.5],
        "llm_prices": [
            {},
            {"local-llama": {"input": 0.01}},
            {"m": {}},
            {"m": {"bogus": 1.0}},
            {"m": {"input": -1}},
            {"m": {"output": 1_000_001}},
        ],
        "group_hourly_rates": [{}, {"Legal": 90}, {"Legal": -1}, {"Legal": 100_001}],
        "allowed_hosts": [[], ["analytics.example.com"]],
        "schedule": ["30 0 * * *", "0 3 * * 1-5"],
        "timezone": ["Europe/Budapest", "UTC"],
        "openai_base_url": ["", "https://example.openai.azure.com/openai/v1"],
        "openai_model": ["gpt-4o-mini"],
        "migrate_on_start": [True, False],
    }
    if field_name in explicit:
        return explicit[field_name]
    default = field.get_default(call_default_factory=True)
    if isinstance(default, enum.Enum):
        return [member.value for member in type(default)] + ["bogus"]
    values: list[Any] = [default]
    for rule in field.metadata:
        for kind, step in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
            bound = getattr(rule, kind, None)
            if bound is not None:
                values += [bound, bound + step] if step else [bound]
    if isinstance(default, int) and not isinstance(default, bool):
        values.append(default + 0.5)
    return values


def _direct_variables() -> dict[str, str]:
    """Settings field => the one Terraform variable it is set from, where that is so."""
    fields = {}
    for field_name, variables in terraform_settings.setting_variables().items():
        expressions = [
            terraform_settings.environment_expressions()[alias]
            for alias in terraform_settings.aliases(field_name)
            if alias in terraform_settings.environment_expressions()
        ]
        credential = Settings.model_fields[field_name].annotation is SecretStr  # its variable is a version
        if len(variables) == 1 and not credential and all("local." not in text for text in expressions):
            fields[field_name] = variables[0]
    return fields


def _settings_rejects(environment: dict[str, str | None]) -> bool:
    known = {name: value for name, value in environment.items() if value is not None}
    known["ANALYTICS_ENVIRONMENT"] = "local"  # the field's own validation, not the secrets'
    try:
        Settings(**known)
    except pydantic.ValidationError:
        return True
    return False


def test_terraform_validations_accept_what_settings_accepts(monkeypatch):
    """For every variable that sets one field: a value Terraform refuses Settings refuses too, and back."""
    for alias in _settings_field_by_alias():
        monkeypatch.delenv(alias, raising=False)
    direct = _direct_variables()
    assert {"hourly_rate", "currency", "min_group_size", "calibration", "llm_prices", "pii_regions"} <= set(
        direct
    )
    checked = 0
    for field_name, variable in sorted(direct.items()):
        for value in _samples(field_name):
            tf_value = list(value) if isinstance(value, tuple) else value
            refused = bool(terraform_settings.rejections(variable, tf_value))
            environment = terraform_settings.environment(terraform_settings.defaults(**{variable: tf_value}))
            rejected = _settings_rejects(environment)
            key = (field_name, repr(value))
            if key in SETTINGS_ONLY_REJECTS:
                assert rejected and not refused, f"{key} is listed as Settings-only but both agree now"
                continue
            if (variable, repr(value)) in TERRAFORM_ONLY_REJECTS:
                assert refused and not rejected, f"{(variable, value)} is listed as Terraform-only"
                continue
            assert refused == rejected, (
                f"var.{variable} = {tf_value!r}: Terraform {'refuses' if refused else 'accepts'} it, "
                f"Settings.{field_name} {'refuses' if rejected else 'accepts'} it — make terraform/variables.tf's "
                "validation match the Field's bounds"
            )
            checked += 1
    assert checked > 80


# Every production rule Terraform can check before deploying: tfvars it refuses (the
# precondition, a local of functions.tf, is false) and Settings refuses too.
PRODUCTION_RULES = [
    ("openwebui_url_configured", {"openwebui_database_url_version": ""}, "OPENWEBUI_DATABASE_URL is missing"),
    (
        "estimator_key_configured",
        {"estimator": "llm", "openai_api_key_version": "", "openai_base_url": ""},
        "OPENAI_API_KEY is missing",
    ),
    (
        "estimator_key_configured",
        {"estimator": "auto", "openai_api_key_version": "", "openai_base_url": ""},
        "OPENAI_API_KEY is missing",
    ),
    ("money_configured", {"hourly_rate": 50, "currency": ""}, "go together"),
    ("money_configured", {"hourly_rate": None, "currency": "EUR"}, "go together"),
    ("money_configured", {"group_hourly_rates": {"Legal": 90}}, "go together"),
]
ACCEPTED_CONFIGURATIONS = [
    {},
    {"estimator": "heuristic", "openai_api_key_version": ""},
    {"openai_api_key_version": "", "openai_base_url": "http://vllm.internal:8000/v1"},
    {"hourly_rate": 50, "currency": "EUR"},
    {"hourly_rate": 50, "currency": "EUR", "group_hourly_rates": {"Legal": 90}},
    {"viewer_role": True, "feedback_role": True, "webui_secret_key_version": "2"},
]
_PRECONDITION_LOCALS = ("openwebui_url_configured", "estimator_key_configured", "money_configured")


def _production_settings(tfvars: dict[str, Any]) -> list[str]:
    """Settings.production_problems() of the api built from what Terraform gives it for `tfvars`."""
    values = terraform_settings.defaults(
        project_id="my-project", openwebui_database_url_version="1", openai_api_key_version="1"
    )
    values.update(tfvars)
    environment = {
        name: value if value is not None else f"https://computed-{name.lower()}.example"
        for name, value in terraform_settings.environment(values).items()
    }
    for index, name in enumerate(terraform_settings.mounted_secrets(values)["api"]):
        environment[name] = f"{index}-generated-or-operator-value-{name.lower()}-0123456789abcdef"
    settings = Settings(**{**environment, "ANALYTICS_ENVIRONMENT": "local"})
    return settings.production_problems()


def test_preconditions_and_production_checks_agree(monkeypatch):
    for alias in _settings_field_by_alias():
        monkeypatch.delenv(alias, raising=False)
    for function in _functions().values():
        for name in _PRECONDITION_LOCALS:
            assert f"${{local.{name}}}" in function["preconditions"], f"{function['key']} lacks local.{name}"
    base = {"openwebui_database_url_version": "1", "openai_api_key_version": "1", "project_id": "p"}
    for condition, tfvars, problem in PRODUCTION_RULES:
        values = terraform_settings.defaults(**{**base, **tfvars})
        holds = terraform_settings.evaluate(_local(condition), values)
        assert holds is False, f"Terraform deploys {tfvars}: local.{condition} holds"
        problems = _production_settings(tfvars)
        assert any(problem in line for line in problems), f"Settings takes {tfvars}: {problems}"
    for tfvars in ACCEPTED_CONFIGURATIONS:
        values = terraform_settings.defaults(**{**base, **tfvars})
        failing = [
            name for name in _PRECONDITION_LOCALS if not terraform_settings.evaluate(_local(name), values)
        ]
        assert not failing, f"Terraform refuses {tfvars}: {failing}"
        assert _production_settings(tfvars) == [], f"Settings refuses what Terraform deploys: {tfvars}"
