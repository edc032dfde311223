"""Compute backends: where a task runs beyond this machine (Kubernetes, ...).

Each backend turns a task into its platform's objects and, with its optional
client installed, submits and watches them. Nothing here knows step semantics.
"""
