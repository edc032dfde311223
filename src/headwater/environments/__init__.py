"""Per-step Python environments (@pypi, @conda, uv projects): what a step asks for, how it is
resolved to a lock, and how a lock becomes an interpreter to run the step's tasks with.

``base`` is the interface every tool implements (``EnvironmentBackend``); the tools live in
modules of their own, so a new one is a new backend and nothing else changes.
"""
