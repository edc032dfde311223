"""``@secrets``: fetch secrets before a task's step runs and expose them as its environment variables.

The variables exist only while the task runs: they are set in the task process
just before the step function and removed (earlier values restored) after the
attempt is committed. They are never artifacts, metadata or log lines.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..flow.decorators import InvalidDecoratorAttribute, StepDecorator, _make
from .base import SecretsError, get_provider
from .spec import DEFAULT_BACKEND_KEY, SecretSpec, parse_source

#: Settings key of the role used when neither the source nor the decorator names one.
DEFAULT_ROLE_KEY = "HEADWATER_DEFAULT_SECRETS_ROLE"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Variables that configure headwater itself; a secret must not change them.
_RESERVED_PREFIXES = ("HEADWATER_",)
# Checking sources when the decorator is validated: the default backend type is read in the task.
_DEFERRED = "(the default backend type)"


class SecretsDecorator(StepDecorator):
    """Inject secrets as environment variables of the step's tasks.

    Parameters
    ----------
    sources : list of str or dict
        Where the secrets come from: ``"<type>.<id>"`` (e.g.
        ``"aws-secrets-manager.db-creds"``), a bare ``"<id>"`` of the default type
        (``HEADWATER_DEFAULT_SECRETS_BACKEND_TYPE``), or a dict with ``id`` and
        optional ``type``, ``options`` and ``role``.
    role : str, optional
        Identity to assume while fetching (e.g. an IAM role ARN); a source's own
        ``role`` wins. Default: ``HEADWATER_DEFAULT_SECRETS_ROLE``.
    allow_override : bool
        Let a secret replace an environment variable that is already set
        (default False: that is an error).

    Examples
    --------
    >>> @secrets(sources=["aws-secrets-manager.db-creds"])
    ... @step
    ... def load(self):
    ...     password = os.environ["PASSWORD"]
    """

    name = "secrets"
    defaults: dict[str, Any] = {"sources": [], "role": None, "allow_override": False}

    def init(self) -> None:
        a = self.attributes
        if not isinstance(a["sources"], (list, tuple)):
            raise InvalidDecoratorAttribute(
                f"@secrets(sources={a['sources']!r}): sources must be a list of strings or dicts.",
                hint="Write @secrets(sources=['aws-secrets-manager.my-secret']).",
            )
        if a["role"] is not None and not isinstance(a["role"], str):
            raise InvalidDecoratorAttribute(f"@secrets(role={a['role']!r}): role must be a string.")
        if not isinstance(a["allow_override"], bool):
            raise InvalidDecoratorAttribute(
                f"@secrets(allow_override={a['allow_override']!r}): allow_override must be True or False.")
        for source in a["sources"]:  # malformed sources fail before the run starts, not in a task
            parse_source(source, role=a["role"], default_type=_DEFERRED)

    def hw_task_pre_step(self, ctx: Any) -> None:
        from ..config import load_settings

        settings = load_settings().extra
        role = self.attributes["role"] or settings.get(DEFAULT_ROLE_KEY)
        specs = [parse_source(s, role=role, default_type=settings.get(DEFAULT_BACKEND_KEY))
                 for s in self.attributes["sources"]]
        found: dict[str, tuple[str, SecretSpec]] = {}
        for spec in specs:
            for var, value in fetch(spec).items():
                if var in found:
                    raise SecretsError(
                        f"Secrets {str(found[var][1])!r} and {str(spec)!r} both set environment variable {var!r}.",
                        hint="Remove one of the sources, or rename the key in one of the secrets.",
                    )
                found[var] = (value, spec)
        if not self.attributes["allow_override"]:
            for var, (_, spec) in found.items():
                if var in os.environ:
                    raise SecretsError(
                        f"Secret {str(spec)!r} sets environment variable {var!r}, which is already set.",
                        hint="Unset it before the run, or pass @secrets(..., allow_override=True).",
                    )
        saved = {var: os.environ.get(var) for var in found}
        setattr(ctx, "_hw_secrets_saved", [*getattr(ctx, "_hw_secrets_saved", []), saved])
        os.environ.update({var: value for var, (value, _) in found.items()})

    def hw_task_finished(self, ctx: Any) -> None:
        for saved in reversed(getattr(ctx, "_hw_secrets_saved", [])):
            for var, old in saved.items():
                if old is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = old
        setattr(ctx, "_hw_secrets_saved", [])


def fetch(spec: SecretSpec) -> dict[str, str]:
    """The variables of one source, checked (names and values are strings; no reserved names)."""
    provider = get_provider(spec.backend_type)
    variables = provider.get_secret_as_dict(spec.secret_id, options=spec.options, role=spec.role)
    for var, value in variables.items():
        if not isinstance(var, str) or not _ENV_NAME.fullmatch(var):
            raise SecretsError(f"Secret {str(spec)!r} has key {var!r}, which is not a valid environment variable name.",
                               hint="Keys must be letters, digits and _, not starting with a digit.")
        if not isinstance(value, str):
            raise SecretsError(f"Secret {str(spec)!r}: the value of {var!r} is a {type(value).__name__}, not a string.")
        if var.startswith(_RESERVED_PREFIXES):
            raise SecretsError(f"Secret {str(spec)!r} would set {var!r}; variables starting with "
                               f"{', '.join(_RESERVED_PREFIXES)} configure headwater and cannot come from a secret.")
    return variables


secrets = _make(SecretsDecorator)
