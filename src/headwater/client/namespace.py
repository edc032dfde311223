"""The namespace the client filters runs by (reading layer).

A run is in namespace ``ns`` when ``ns`` is one of its tags or system tags;
``None`` is the global namespace (every run). Until :func:`namespace` is called
the namespace is the default, ``user:<current user>``, which follows the
environment (``HEADWATER_USER``/``USER``) as it changes; inside a task of
``run --namespace NS`` the default is ``NS`` (``headwater.run_namespace``).
"""

from __future__ import annotations

import threading

from ..exceptions import HeadwaterException
from .. import run_namespace
from .source import current_settings

_UNSET = object()
_lock = threading.Lock()
_current: object = _UNSET


def _default() -> str | None:
    chosen = run_namespace.chosen()  # inside a task of `run --namespace NS`
    if chosen:
        return chosen[0]
    return current_settings().identity


def namespace(ns: str | None) -> str | None:
    """Switch the namespace the client filters runs by.

    Parameters
    ----------
    ns : str or None
        A tag such as ``"user:alice"`` or ``"team:nlp"``; ``None`` switches to
        the global namespace, where every run is visible.

    Returns
    -------
    str or None
        The namespace now in effect.

    Examples
    --------
    >>> namespace(None)  # see every run
    >>> namespace("user:alice")
    'user:alice'
    """
    global _current
    if ns is not None and (not isinstance(ns, str) or not ns):
        raise HeadwaterException(
            f"namespace() expects a tag such as 'user:alice', or None, got {ns!r}.",
            hint="Call namespace(None) to see every run.",
        )
    with _lock:
        _current = ns
    return ns


def get_namespace() -> str | None:
    """The namespace in effect.

    Returns
    -------
    str or None
        The current namespace, ``None`` when it is global.
    """
    cur = _current
    return _default() if cur is _UNSET else cur  # type: ignore[return-value]


def default_namespace() -> str | None:
    """Go back to the default namespace, ``user:<current user>``.

    Returns
    -------
    str or None
        The default namespace (``None`` when no user name is known).
    """
    global _current
    with _lock:
        _current = _UNSET
    return get_namespace()
