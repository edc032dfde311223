"""headwater: ML and data pipelines as Python classes (Metaflow's API, much faster).

Public API: the names in ``__all__`` below, plus ``headwater.cards`` and
``headwater.decorators`` (Metaflow's path for the decorator base classes).
Step and flow decorator plugins are importable by name (``from headwater import
<plugin>``). Every other module is internal and may change.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .exceptions import HeadwaterException as HeadwaterException
from .flow.current import current as current
from .flow.decorators import StepDecorator as StepDecorator
from .flow.decorators import catch as catch
from .flow.decorators import environment as environment
from .flow.decorators import resources as resources
from .flow.decorators import retry as retry
from .flow.decorators import timeout as timeout
from .flow.parameters import IncludeFile as IncludeFile
from .flow.parameters import JSONType as JSONType
from .flow.parameters import JSONTypeClass as JSONTypeClass
from .flow.parameters import Parameter as Parameter
from .flow.spec import FlowSpec as FlowSpec
from .flow.step import step as step

# The client and the runner load on first use: a task that never reads past runs never imports them.
_LAZY = {
    # Configs, mutators and user decorators load when a flow uses them (import headwater stays fast).
    "Config": "headwater.flow.config",
    "ConfigValue": "headwater.flow.config",
    "config_expr": "headwater.flow.config",
    "FlowDecorator": "headwater.flow.flow_decorators",
    "FlowMutator": "headwater.flow.mutators",
    "USER_SKIP_STEP": "headwater.flow.user_decorators",
    "StepMutator": "headwater.flow.user_decorators",
    "UserStepDecorator": "headwater.flow.user_decorators",
    "user_step_decorator": "headwater.flow.user_decorators",
    "Headwater": "headwater.client",
    "Metaflow": "headwater.client",
    "Flow": "headwater.client",
    "Run": "headwater.client",
    "Step": "headwater.client",
    "Task": "headwater.client",
    "DataArtifact": "headwater.client",
    "namespace": "headwater.client",
    "get_namespace": "headwater.client",
    "default_namespace": "headwater.client",
    "metadata": "headwater.client",
    "get_metadata": "headwater.client",
    "default_metadata": "headwater.client",
    "Runner": "headwater.runner",
    "NBRunner": "headwater.runner",
    "ExecutingRun": "headwater.runner",
    "Deployer": "headwater.runner",
    "DeployedFlow": "headwater.runner",
    "project": "headwater.flow.project",
    "exit_hook": "headwater.flow.exit_hook",
    "schedule": "headwater.flow.schedule",
    "trigger": "headwater.flow.triggers",
    "trigger_on_finish": "headwater.flow.triggers",
    "yaml_parser": "headwater.flow.parsers",
    "requirements_txt_parser": "headwater.flow.parsers",
    "pyproject_toml_parser": "headwater.flow.parsers",
    # @card loads the cards package only when a flow uses it.
    "card": "headwater.cards.decorator",
    "parallel": "headwater.flow.parallel",
    "pypi": "headwater.flow.environment_decorators",
    "pypi_base": "headwater.flow.environment_decorators",
    "conda": "headwater.flow.environment_decorators",
    "conda_base": "headwater.flow.environment_decorators",
    "kubernetes": "headwater.flow.kubernetes",
    "ray_task": "headwater.flow.ray_task",
    "parallel_map": "headwater.multicore",
    "parallel_imap_unordered": "headwater.multicore",
    "profile": "headwater.timing",
    "secrets": "headwater.secret_providers.decorator",
    # The S3 data tools (Metaflow's `from metaflow import S3`); obstore loads only when used.
    "S3": "headwater.datatools",
    "view": "headwater.flow.views",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is not None:
        value = getattr(importlib.import_module(mod), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        value = _plugin_decorator(name)
        if value is not None:
            globals()[name] = value
            return value
    raise AttributeError(f"module 'headwater' has no attribute {name!r}")


def _plugin_decorator(name: str) -> Any:
    """``from headwater import <plugin decorator>``: a step or flow decorator plugin, as ``@name``."""
    from .flow.decorators import make_step_decorator
    from .flow.flow_decorators import FlowDecorator, make_flow_decorator
    from .plugins import PluginKind, find_plugin

    found = find_plugin(PluginKind.STEP_DECORATOR, name)
    if isinstance(found, type) and issubclass(found, StepDecorator):
        return make_step_decorator(found)
    if found is not None:
        return found  # a user step decorator class is its own @form
    found = find_plugin(PluginKind.FLOW_DECORATOR, name)
    if isinstance(found, type) and issubclass(found, FlowDecorator):
        return make_flow_decorator(found)
    return found


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = sorted([
    "Config", "ConfigValue", "config_expr", "exit_hook", "project", "pyproject_toml_parser",
    "requirements_txt_parser", "yaml_parser",
    "DataArtifact", "DeployedFlow", "Deployer", "ExecutingRun", "Flow", "FlowDecorator", "FlowMutator", "FlowSpec", "Headwater",
    "HeadwaterException", "IncludeFile",
    "JSONType", "JSONTypeClass", "conda", "conda_base", "kubernetes", "Metaflow", "NBRunner", "Parameter", "Run", "Runner", "S3", "Step", "Task", "card", "catch",
    "current", "default_metadata", "default_namespace", "environment", "get_metadata", "get_namespace",
    "metadata", "namespace", "parallel", "parallel_imap_unordered", "parallel_map", "profile", "pypi", "pypi_base", "ray_task", "resources", "retry",
    "schedule", "secrets", "step", "timeout", "trigger", "trigger_on_finish", "view",
    "StepDecorator", "StepMutator", "USER_SKIP_STEP", "UserStepDecorator", "user_step_decorator",
])
