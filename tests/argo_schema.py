"""The strict schema of Argo's objects, from hera's models of Argo's API (test helper).

hera's pydantic models are generated from Argo's own OpenAPI schema; ``strict`` adds
``additionalProperties: false`` to every object, so an unknown field (a typo, a field
Argo removed) fails as a real server's strict field validation would. Shared by the
compile tests and the fake API server's validators (tests/compute/test_argo_server.py).
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
from hera.workflows import models as hera_models

KINDS = ("WorkflowTemplate", "CronWorkflow", "Workflow")


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


@functools.cache
def validator(kind: str) -> Any:
    """A Draft 2020-12 validator of the strict schema of ``kind`` (``WorkflowTemplate``, ...)."""
    return jsonschema.Draft202012Validator(strict(getattr(hera_models, kind).model_json_schema(by_alias=True)))


def _leaves(error: Any) -> list[str]:
    """The innermost messages under an error (an ``anyOf`` reports only that no branch matched)."""
    if not error.context:
        return [error.message]
    return [m for sub in error.context for m in _leaves(sub)]


def validate(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` listing every innermost reason ``obj`` breaks the strict schema."""
    assert obj["apiVersion"] == "argoproj.io/v1alpha1"
    errors = list(validator(obj["kind"]).iter_errors(obj))
    if errors:
        raise jsonschema.ValidationError("; ".join(m for e in errors for m in _leaves(e)))
