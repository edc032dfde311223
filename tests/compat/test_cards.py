"""Cards: the same cards are listed by ``card list`` and ``get_cards`` in both engines."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from compat.harness import HERE, normalize

EXPECTED = [["blank", "notes"], ["default", None]]


@pytest.fixture(scope="module")
def card_run(both: Callable[..., Any]) -> Any:
    pair = both("card_flow.py", "run")
    assert pair.mf.returncode == pair.hw.returncode == 0, (pair.mf.stderr[-2000:], pair.hw.stderr[-2000:])
    return pair


@pytest.fixture(scope="module")
def listed(each: Callable[..., Any], card_run: Any) -> dict[str, Any]:
    results = each("card_flow.py", "card", "list", "RID/start", "--as-json", run=card_run)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    return {name: json.loads(res.stdout) for name, res in results.items()}


def _cards(doc: Any) -> list[list[Any]]:
    """(type, id) of each card, whichever JSON shape the engine printed."""
    items = doc["cards"] if isinstance(doc, dict) else doc
    return sorted([c["type"], c["id"]] for c in items)


def test_card_list_names_the_same_cards(listed: dict[str, Any]) -> None:
    assert _cards(listed["headwater"]) == _cards(listed["metaflow"]) == EXPECTED


def test_card_list_json_shape(listed: dict[str, Any]) -> None:
    mf, hw = listed["metaflow"], listed["headwater"]
    assert isinstance(hw, dict) and set(hw) == set(mf)
    assert [set(c) for c in hw["cards"]] == [set(c) for c in mf["cards"]]


def test_get_cards(card_run: Any) -> None:
    got = {name: normalize(eng.script(HERE / "card_probe.py", f"CardFlow/{card_run.results[name].run_id}/start/1"))
           for name, eng in card_run.engines.items()}
    assert got["headwater"] == got["metaflow"]
    assert got["metaflow"]["cards"] == [c + [True] for c in EXPECTED]
