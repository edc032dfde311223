"""Kubernetes: one batch/v1 Job per task attempt (``job``), with names valid as
DNS labels (``names``) and the task's command line per the shared contract
(``commands``). Manifests are plain dicts; no Kubernetes client is imported here.
"""
