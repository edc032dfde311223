"""The only place that turns a ``HeadwaterException`` into a message and an exit code."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

from ..exceptions import HeadwaterException

T = TypeVar("T")


def report(e: HeadwaterException) -> int:
    sys.stderr.write(e.render() + "\n")
    sys.stderr.flush()
    return e.exit_code


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; a user error prints without a traceback and exits with its code."""
    try:
        return fn()
    except HeadwaterException as e:
        raise SystemExit(report(e)) from None
