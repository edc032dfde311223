"""A secrets provider: ``@secrets(sources=["envfile./path/to/file.env"])`` reads
``NAME=value`` lines from a file (blank lines and ``#`` comments skipped)."""

from __future__ import annotations

from typing import Any

from headwater.secret_providers.base import SecretsProvider


class EnvFileSecretsProvider(SecretsProvider):
    TYPE = "envfile"

    def get_secret_as_dict(self, secret_id: str, options: dict[str, Any] | None = None,
                           role: str | None = None) -> dict[str, str]:
        out: dict[str, str] = {}
        with open(secret_id) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, value = line.partition("=")
                    out[name.strip()] = value.strip()
        return out
