"""Strict JSON schemas for the Argo objects headwater emits, derived from hera's pydantic models
(test helper).

hera 7.1's models are generated from Argo Workflows' (4.0.5) and Argo Events' OpenAPI schemas.
``model_json_schema()`` gives their JSON schema; ``strict`` adds ``additionalProperties: false`` to
every object that lists its properties, so an unknown or misspelt field fails (as a real server's
strict field validation would). Shared by the compile tests and the fake API server's validators.

Two corrections, each to follow the real API rather than the generated model:

- hera's events models have no ``apiVersion`` / ``kind`` on ``Sensor``; ``validate`` checks those
  two itself and validates the rest.
- A k8s trigger's ``source.resource`` is any Kubernetes object in Argo Events (its Go type,
  ``K8SResource``, unmarshals arbitrary JSON), but the generated model makes it
  ``{"value": <base64>}``. The schema takes any object there, and ``validate`` checks the embedded
  object against its own strict schema (a ``Workflow``).
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema

API_VERSION = "argoproj.io/v1alpha1"
WORKFLOW_KINDS = ("WorkflowTemplate", "CronWorkflow", "Workflow")
EVENTS_KINDS = ("Sensor",)


def strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that lists its properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and out.get("type", "object") == "object":
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def _events_schema(model: Any) -> dict[str, Any]:
    schema = strict(model.model_json_schema(by_alias=True))
    schema["$defs"]["K8SResource"] = {"type": "object"}  # any object; checked by validate()
    return schema


@functools.cache
def build_validators() -> dict[str, Any]:
    """A strict validator per kind (``WorkflowTemplate``, ``CronWorkflow``, ``Workflow``, ``Sensor``)."""
    import hera.events.models as events
    import hera.workflows.models as workflows

    out: dict[str, Any] = {}
    for kind in WORKFLOW_KINDS:
        out[kind] = jsonschema.Draft202012Validator(strict(getattr(workflows, kind).model_json_schema(by_alias=True)))
    for kind in EVENTS_KINDS:
        out[kind] = jsonschema.Draft202012Validator(_events_schema(getattr(events, kind)))
    return out


def leaves(error: Any) -> list[str]:
    """The innermost messages under an error (an ``anyOf`` reports only that no branch matched)."""
    if not error.context:
        return [error.message]
    return [m for sub in error.context for m in leaves(sub)]


def _check(obj: dict[str, Any], validator: Any) -> None:
    errors = list(validator.iter_errors(obj))
    if errors:
        raise jsonschema.ValidationError("; ".join(m for e in errors for m in leaves(e)))


def validate(obj: dict[str, Any], validators: dict[str, Any] | None = None) -> None:
    """Raise ``ValidationError`` listing every innermost reason ``obj`` breaks its kind's strict schema
    (``validators``: ``build_validators()``'s, built once when not given)."""
    validators = validators if validators is not None else build_validators()
    assert obj["apiVersion"] == API_VERSION, obj.get("apiVersion")
    kind = obj["kind"]
    if kind in WORKFLOW_KINDS:
        _check(obj, validators[kind])
        return
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    _check(body, validators[kind])
    for trigger in obj["spec"].get("triggers", []):
        resource = trigger["template"].get("k8s", {}).get("source", {}).get("resource")
        if resource is not None:
            validate(resource, validators)
