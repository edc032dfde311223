"""A deliberately broken plugin: importing it fails."""

raise ImportError("hw_example_plugin.broken is broken on purpose")
