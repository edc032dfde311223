"""Fixtures for the flow layer's tests: a FlowSpec to subclass and a loader for tests/flows/graphs/."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

try:
    from headwater.flow.spec import FlowSpec as _FlowSpec
except ImportError:  # headwater.flow.spec not written yet: the graph only needs self.next to exist.

    class _FlowSpec:  # type: ignore[no-redef]
        def next(self, *steps: Any, **kwargs: Any) -> None:
            pass


GRAPHS = Path(__file__).resolve().parent.parent / "flows" / "graphs"
_counter = itertools.count()


def load_flow_module(name: str) -> ModuleType:
    """Import ``tests/flows/graphs/<name>.py`` as a fresh module, with ``FlowSpec`` provided."""
    path = GRAPHS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_hw_graphs_{name}_{next(_counter)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.FlowSpec = _FlowSpec  # type: ignore[attr-defined]
    spec.loader.exec_module(module)
    return module


def marker_line(name: str, marker: str) -> int:
    """The line of ``tests/flows/graphs/<name>.py`` that ends with ``# L:<marker>``."""
    lines = (GRAPHS / f"{name}.py").read_text().splitlines()
    hits = [i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# L:{marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times in {name}.py"
    return hits[0]


@pytest.fixture
def flowspec() -> type:
    """The FlowSpec class to subclass in tests (headwater's, or a stand-in)."""
    return _FlowSpec


@pytest.fixture(scope="session")
def load_flow() -> Callable[[str], ModuleType]:
    return load_flow_module


@pytest.fixture(scope="session")
def line_of() -> Callable[[str, str], int]:
    return marker_line
