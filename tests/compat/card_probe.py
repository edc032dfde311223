"""List the cards of a task through an engine's ``cards.get_cards``; print JSON.

``python card_probe.py ENGINE PATHSPEC`` -> ``[[type, id, html_has_doctype], ...]`` sorted.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(engine: str, pathspec: str) -> None:
    mod = importlib.import_module(engine)
    mod.namespace("user:tester")
    cards = importlib.import_module(engine + ".cards").get_cards(mod.Task(pathspec))
    out = sorted([c.type, c.id, "<html" in c.get().lower()] for c in cards)
    json.dump({"count": len(cards), "cards": out}, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:3])
