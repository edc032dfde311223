"""Secrets for ``@secrets``: the provider interface (``base``), source specs (``spec``),
the built-in providers (``inline``, ``aws``) and the decorator (``decorator``).

Named ``secret_providers`` (not ``secrets``) so that ``headwater.secrets`` stays the decorator.
"""
