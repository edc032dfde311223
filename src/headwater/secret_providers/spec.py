"""``@secrets`` source specs: ``"type.id"`` / ``"id"`` strings and dicts, as Metaflow accepts them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import SecretsError

#: Settings key of the backend used by sources that name none.
DEFAULT_BACKEND_KEY = "HEADWATER_DEFAULT_SECRETS_BACKEND_TYPE"


@dataclass(frozen=True)
class SecretSpec:
    """One source of a ``@secrets`` decorator, resolved."""

    backend_type: str
    secret_id: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold values (inline)
    role: str | None = None

    def __str__(self) -> str:
        return f"{self.secret_id} ({self.backend_type})"


def describe(source: Any) -> str:
    """A source as error messages show it: type, id and key names, never option values
    (an inline source's options hold the secret values themselves)."""
    if isinstance(source, dict):
        parts = [f"{k}={source[k]!r}" for k in ("type", "id", "role") if isinstance(source.get(k), str)]
        keys = sorted(map(str, source))
        return "{" + ", ".join(parts + [f"keys={keys}"]) + "}"
    if isinstance(source, str):
        return repr(source)
    return f"a {type(source).__name__}"


def _default_type(source: Any, default_type: str | None) -> str:
    if not default_type:
        raise SecretsError(
            f"@secrets source {source!r} names no backend type, and no default is set.",
            hint=f"Write it as '<type>.<id>' (e.g. 'aws-secrets-manager.{source}'), or set {DEFAULT_BACKEND_KEY}.",
        )
    return default_type


def parse_source(source: Any, *, role: str | None, default_type: str | None) -> SecretSpec:
    """Read one item of ``@secrets(sources=[...])``.

    A string is ``"<type>.<id>"`` (split at the first dot) or a bare ``"<id>"``
    of the default type; a dict has ``id`` and optional ``type``, ``options`` and
    ``role`` (which wins over the decorator's ``role``).

    Examples
    --------
    >>> parse_source("aws-secrets-manager.db-creds", role=None, default_type=None).secret_id
    'db-creds'
    """
    if isinstance(source, str):
        kind, dot, secret_id = source.partition(".")
        if not dot:
            return SecretSpec(_default_type(source, default_type), source, {}, role)
        if not kind or not secret_id:
            raise SecretsError(f"@secrets source {source!r} must be '<type>.<id>' or '<id>'.")
        return SecretSpec(kind, secret_id, {}, role)
    if not isinstance(source, dict):
        raise SecretsError(
            f"@secrets source {describe(source)} is a {type(source).__name__}; a source is a string or a dict.",
            hint="Write 'aws-secrets-manager.my-secret' or {'type': 'inline', 'id': 'x', 'options': {...}}.",
        )
    unknown = set(source) - {"type", "id", "options", "role"}
    if unknown:
        raise SecretsError(
            f"@secrets source {describe(source)} has unknown keys: {', '.join(sorted(map(str, unknown)))}.",
            hint="A dict source takes id, and optionally type, options and role.",
        )
    secret_id = source.get("id")
    if not isinstance(secret_id, str) or not secret_id:
        raise SecretsError(f"@secrets source {describe(source)} needs 'id', a string naming the secret.")
    kind = source["type"] if "type" in source else _default_type(secret_id, default_type)
    if not isinstance(kind, str) or not kind:
        raise SecretsError(f"@secrets source {describe(source)}: 'type' must be a string naming a backend.")
    options = source.get("options", {})
    if not isinstance(options, dict):
        raise SecretsError(f"@secrets source {describe(source)}: 'options' must be a dict.")
    source_role = source.get("role")
    if source_role is not None and not isinstance(source_role, str):
        raise SecretsError(f"@secrets source {describe(source)}: 'role' must be a string.")
    return SecretSpec(kind, secret_id, dict(options), source_role if source_role is not None else role)
