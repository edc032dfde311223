"""Cards: HTML reports of tasks (public API, as ``metaflow.cards``).

Put ``@card`` on a step, add components to ``current.card`` while it runs, and
read the rendered cards back with :func:`get_cards` or ``python flow.py card``.

Examples
--------
>>> from headwater.cards import Markdown, Table
>>> html = Table([[1, 2]], headers=["a", "b"]).render()
"""

from __future__ import annotations

from .card import BlankCard, CardTask, DefaultCard, ErrorCard, HeadwaterCard, MetaflowCard
from .client import Card, CardContainer, get_cards
from .collector import CardComponentCollector, ComponentManager
from .components import (
    Artifact,
    CardComponent,
    Error,
    Image,
    Markdown,
    MetaflowCardComponent,
    ProgressBar,
    Table,
    ValueBox,
)
from .viewers import JSONViewer, PythonCode, VegaChart, YAMLViewer

__all__ = [
    "Artifact",
    "BlankCard",
    "Card",
    "CardComponent",
    "CardComponentCollector",
    "CardContainer",
    "CardTask",
    "ComponentManager",
    "DefaultCard",
    "Error",
    "ErrorCard",
    "HeadwaterCard",
    "Image",
    "JSONViewer",
    "Markdown",
    "MetaflowCard",
    "MetaflowCardComponent",
    "ProgressBar",
    "PythonCode",
    "Table",
    "ValueBox",
    "VegaChart",
    "YAMLViewer",
    "get_cards",
]
