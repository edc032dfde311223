"""The ``inline`` secrets provider: the variables are written in the source spec (for tests and demos)."""

from __future__ import annotations

from typing import Any

from .base import SecretsError, SecretsProvider


class InlineSecretsProvider(SecretsProvider):
    """``{"type": "inline", "id": "name", "options": {"env_vars": {"NAME": "value"}}}``, as in Metaflow."""

    TYPE = "inline"

    def get_secret_as_dict(self, secret_id: str, options: dict[str, Any] | None = None,
                           role: str | None = None) -> dict[str, str]:
        env_vars = (options or {}).get("env_vars", {})
        if not isinstance(env_vars, dict):
            raise SecretsError(
                f"Inline secret {secret_id!r}: options['env_vars'] must be a dict of names to values.",
                hint="Write {'type': 'inline', 'id': 'x', 'options': {'env_vars': {'NAME': 'value'}}}.",
            )
        return dict(env_vars)
