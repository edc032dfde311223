"""A custom card type."""

from __future__ import annotations

from headwater.cards import MetaflowCard


class HelloCard(MetaflowCard):
    type = "plugin_hello"

    def render(self, task):
        return f"<html><body><h1>Hello from the plugin card</h1><p>{task.pathspec}</p></body></html>"
