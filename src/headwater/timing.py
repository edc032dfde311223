"""``profile``: a context manager that times a block of step code (public API, exported by ``headwater``)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def profile(label: str, stats_dict: dict[str, int] | None = None) -> Iterator[None]:
    """Time the ``with`` block in whole milliseconds.

    Parameters
    ----------
    label : str
        What is being timed.
    stats_dict : dict, optional
        When given, nothing is printed: the milliseconds are added to
        ``stats_dict[label]`` (so repeated blocks accumulate). When omitted, a line
        is printed when the block starts and one when it completes.

    Examples
    --------
    >>> stats = {}
    >>> with profile("load", stats):
    ...     data = load()
    >>> stats["load"]  # milliseconds
    12
    """
    if stats_dict is None:
        print(f"PROFILE: {label} starting")
    start = time.perf_counter()
    yield
    took = int((time.perf_counter() - start) * 1000)
    if stats_dict is None:
        print(f"PROFILE: {label} completed in {took}ms")
    else:
        stats_dict[label] = stats_dict.get(label, 0) + took
