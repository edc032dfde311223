"""headwater: ML and data pipelines as Python classes (Metaflow's API, much faster).

Public API: the names in ``__all__`` below, plus ``headwater.cards``.
Every other module is internal and may change.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .exceptions import HeadwaterException as HeadwaterException
from .flow.config import Config as Config
from .flow.config import ConfigValue as ConfigValue
from .flow.config import config_expr as config_expr
from .flow.current import current as current
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
    "project": "headwater.flow.project",
    "exit_hook": "headwater.flow.exit_hook",
    "yaml_parser": "headwater.flow.parsers",
    "requirements_txt_parser": "headwater.flow.parsers",
    "pyproject_toml_parser": "headwater.flow.parsers",
    # @card loads the cards package only when a flow uses it.
    "card": "headwater.cards.decorator",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is not None:
        value = getattr(importlib.import_module(mod), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'headwater' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = sorted([
    "Config", "ConfigValue", "config_expr", "exit_hook", "project", "pyproject_toml_parser",
    "requirements_txt_parser", "yaml_parser",
    "DataArtifact", "ExecutingRun", "Flow", "FlowSpec", "Headwater", "HeadwaterException", "IncludeFile",
    "JSONType", "JSONTypeClass", "Metaflow", "NBRunner", "Parameter", "Run", "Runner", "Step", "Task", "card", "catch",
    "current", "default_metadata", "default_namespace", "environment", "get_metadata", "get_namespace",
    "metadata", "namespace", "resources", "retry", "step", "timeout",
])
