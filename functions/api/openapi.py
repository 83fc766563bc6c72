"""The OpenAPI 3.1 document, built from the route table and the pydantic models.

Nothing is written by hand twice: paths, methods, parameters (with their bounds),
response schemas and status codes come from the same `Route` entries and models
that the endpoints use, so the document cannot drift from what they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from functions.read.schemas import RANGE_RULES, ErrorResponse
from shared.roles import Access

__all__ = ["PSEUDONYM_NOTE", "Route", "build_openapi"]


class Route(Protocol):
    """What the document needs of a route (`functions.api.app.Route` is one; no import back)."""

    @property
    def path(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def methods(self) -> tuple[str, ...]: ...

    @property
    def session_ok(self) -> bool: ...

    @property
    def errors(self) -> tuple[tuple[int, str], ...]: ...

    @property
    def query(self) -> type[BaseModel] | None: ...

    @property
    def response(self) -> Any: ...

    @property
    def status(self) -> int: ...

    @property
    def media_type(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def tag(self) -> str: ...

    @property
    def access(self) -> Access: ...

    @property
    def documented(self) -> bool: ...


PSEUDONYM_NOTE = (
    "What the pseudonyms protect: a user appears only as `user_id_hash`, an HMAC-SHA256 of "
    "the Open WebUI user id under `ANALYTICS_HMAC_KEY`. That keeps names, e-mails and ids out "
    "of the analytics database, its backups, logs and exports, and away from anyone who holds "
    "those but neither the key nor Open WebUI's database. It does not hide people from an "
    "admin: `main.py hash-user ID` computes anyone's pseudonym by design (to answer \"how much "
    "time did this person save\"), and an admin who can read Open WebUI's database joins the "
    "CSV export's `conversation_id` (and so every pseudonym) straight back to the user. The "
    "CSV keeps `conversation_id` for admins on purpose, to audit an estimate against its "
    "chat; the `viewer` role never sees conversation ids, pseudonyms or the CSV."
)

_REF = "#/components/schemas/{model}"

_ERRORS = {
    "401": "Missing or wrong credentials.",
    "403": "A valid Open WebUI token of a user who is not an admin.",
    "422": "A parameter is invalid; `detail` names it.",
    "429": "Too many failed attempts from this client; see `Retry-After`.",
}


def _model_of(response: Any) -> type[BaseModel] | None:
    if isinstance(response, type) and issubclass(response, BaseModel):
        return response
    if get_origin(response) is list:
        (item,) = get_args(response)
        return _model_of(item)
    return None


def _schema_of(response: Any) -> dict[str, Any]:
    if get_origin(response) is list:
        (item,) = get_args(response)
        return {"type": "array", "items": _schema_of(item)}
    model = _model_of(response)
    if model is None:
        return {"type": "object"}
    return {"$ref": _REF.format(model=model.__name__)}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the `null` branch of an optional."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    kept = [branch for branch in branches if branch.get("type") != "null"]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(kept) == 1:
        return {**kept[0], **rest}
    return {**rest, "anyOf": kept}


def _parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        cleaned = _without_null(dict(field_schema))
        cleaned.pop("title", None)
        if cleaned.get("default", 0) is None:
            del cleaned["default"]
        description = cleaned.pop("description", "")
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": description,
                "schema": cleaned,
            }
        )
    return parameters


def _operation(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = {"description": route.summary}
    if route.media_type == "application/json":
        success["content"] = {"application/json": {"schema": _schema_of(route.response)}}
    else:
        success["content"] = {route.media_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(route.status): success}
    error_content = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}
    for code, description in [*_ERRORS.items(), *((str(c), d) for c, d in route.errors)]:
        responses[code] = {"description": description, "content": error_content}
    responses["429"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
    }
    security: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    if route.session_ok:
        security.append({"sessionCookie": []})
    description = route.description
    if route.query is not None and "days" in route.query.model_fields:
        description = f"{description}\n\n{RANGE_RULES}"
    roles = sorted(str(role) for role in route.access)
    description = f"{description}\n\nRoles: {', '.join(f'`{role}`' for role in roles)}."
    operation = {
        "operationId": route.endpoint.replace("-", "_"),
        "summary": route.summary,
        "description": description,
        "tags": [route.tag],
        "parameters": _parameters(route.query),
        "responses": responses,
        "security": security,
        "x-roles": roles,
    }
    if "POST" in route.methods and route.query is not None:
        # a POST takes the same parameters in the query string or as a JSON object body
        body_schema = route.query.model_json_schema(mode="validation")
        body_schema.pop("title", None)
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body_schema}},
        }
    return operation


def build_openapi(routes: Sequence[Route], *, session_cookie: str, version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the documented (API) routes."""
    documented = [route for route in routes if route.documented]
    models: set[type[BaseModel]] = {ErrorResponse}
    for route in documented:
        model = _model_of(route.response)
        if model is not None:
            models.add(model)
    _, definitions = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in documented:
        for method in route.methods:
            paths.setdefault(route.path, {})[method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Time Savings Analytics API",
            "version": version,
            "description": "Admin API over the time-savings analyses of an Open WebUI deployment. "
            "Times are in minutes; every total carries its low–high band and the estimators "
            "behind it. Dates are local dates of the configured time zone.\n\n"
            + PSEUDONYM_NOTE
            + "\n\nRoles: `admin` may call everything; `viewer` (management) the aggregates "
            "only; `feedback` only the feedback endpoint. Each operation lists its roles "
            "(`x-roles`); another role gets 403.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The dashboard password (`admin`), the viewer password "
                    "(`viewer`), the feedback token (`feedback`), or an Open WebUI admin session "
                    "token (`admin`, when WEBUI_SECRET_KEY is configured).",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": session_cookie,
                    "description": "The dashboard's login session (`admin` or `viewer`, by the "
                    "password it signed in with; GET requests only). Ends at sign-out, server-side.",
                },
            },
        },
    }
