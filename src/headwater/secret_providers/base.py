"""The secrets provider interface and the registry of providers by type name.

A provider turns one secret id into environment variables. Built-in providers
are registered here by ``"module:Class"`` and imported on first use, so an
optional dependency (boto3 for AWS) is only needed by flows that use it.
Plugins add theirs with ``register_provider``; ``get_provider`` is the one
lookup everything uses.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from ..exceptions import HeadwaterException


class SecretsError(HeadwaterException):
    """A ``@secrets`` source could not be turned into environment variables."""

    headline = "Secrets error"


class UnknownSecretsBackendError(SecretsError):
    """A source names a backend type that no provider is registered for."""

    headline = "Unknown secrets backend"


class SecretsProviderNotInstalledError(SecretsError):
    """The provider exists but needs a package that is not installed."""

    headline = "Secrets backend not installed"


class SecretsProvider:
    """One way of fetching secrets (a backend type, e.g. ``"aws-secrets-manager"``).

    Subclasses set ``TYPE`` and implement ``get_secret_as_dict``.
    """

    TYPE = ""
    #: Extra to install when the provider's dependency is missing (``pip install 'headwater[<extra>]'``).
    EXTRA: str | None = None

    def get_secret_as_dict(self, secret_id: str, options: dict[str, Any] | None = None,
                           role: str | None = None) -> dict[str, str]:
        """The environment variables a secret provides (names to values).

        Parameters
        ----------
        secret_id : str
            The secret's id in the backend.
        options : dict, optional
            Backend-specific options from the source spec.
        role : str, optional
            An identity to assume while fetching (e.g. an AWS IAM role ARN).
        """
        raise NotImplementedError


ProviderFactory = Callable[[], SecretsProvider]

# type name -> "module:Class" (built in, imported on first use) or a factory (plugins).
_REGISTRY: dict[str, str | ProviderFactory] = {
    "inline": "headwater.secret_providers.inline:InlineSecretsProvider",
    "aws-secrets-manager": "headwater.secret_providers.aws:AwsSecretsManagerProvider",
}


def register_provider(type_name: str, provider: str | ProviderFactory) -> None:
    """Make ``type_name`` usable in ``@secrets`` sources.

    Parameters
    ----------
    type_name : str
        The backend type, as written in sources (``"<type>.<id>"`` or ``{"type": ...}``).
    provider : str or callable
        ``"module:Class"`` (imported on first use) or a callable returning a ``SecretsProvider``.
    """
    _REGISTRY[type_name] = provider


def provider_types() -> list[str]:
    """The backend types: registered here and installed as ``headwater.secrets_providers`` plugins."""
    from ..plugins import PluginKind, plugin_names

    return sorted({*_REGISTRY, *plugin_names(PluginKind.SECRETS_PROVIDER)})


def get_provider(type_name: str) -> SecretsProvider:
    """The provider for a backend type.

    Raises
    ------
    UnknownSecretsBackendError
        No provider is registered for ``type_name``.
    SecretsProviderNotInstalledError
        The provider needs a package that is not installed.
    """
    target = _REGISTRY.get(type_name)
    if target is None:
        from ..plugins import PluginKind, find_plugin

        plugin = find_plugin(PluginKind.SECRETS_PROVIDER, type_name)  # a SecretsProvider class or factory
        if callable(plugin):
            provider = plugin()
            if not isinstance(provider, SecretsProvider):
                raise UnknownSecretsBackendError(
                    f"The secrets provider plugin {type_name!r} gave a {type(provider).__name__}, "
                    "not a SecretsProvider.", hint="Fix or uninstall the plugin.")
            return provider
        raise UnknownSecretsBackendError(
            f"There is no secrets backend of type {type_name!r}.",
            hint=f"Use one of: {', '.join(provider_types())} (or install the plugin that provides it).",
        )
    if not isinstance(target, str):
        return target()
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls()


def missing_dependency(provider: SecretsProvider, error: ImportError) -> SecretsProviderNotInstalledError:
    """The error for a provider whose dependency failed to import."""
    extra = f"pip install 'headwater[{provider.EXTRA}]'" if provider.EXTRA else f"install {error.name or 'it'}"
    return SecretsProviderNotInstalledError(
        f"The {provider.TYPE!r} secrets backend needs the package {error.name or 'it depends on'!r}, "
        "which is not installed.",
        hint=f"Install it: {extra}.",
    )
