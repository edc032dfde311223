"""Compile a flow to Argo Workflows objects (WorkflowTemplate, CronWorkflow) as plain dicts (internal).

``compile_flow`` in ``compile.py`` is pure: it reads the flow's graph and decorators and
returns dicts; nothing here talks to a cluster.
"""
