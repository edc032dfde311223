"""Compute backends: where a task runs beyond this machine (Kubernetes, ...), and the
compilers that turn a flow into a production orchestrator's objects (Argo Workflows).

Each backend turns a task into its platform's objects and, with its optional
client installed, submits and watches them. Nothing here knows step semantics.
"""
