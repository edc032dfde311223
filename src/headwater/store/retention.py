"""What ``headwater gc`` keeps and ``headwater delete`` removes (storage layer, internal): the
retention policies as the user gives them, parsed and checked; ``store.gc`` applies them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..exceptions import HeadwaterException, HeadwaterInvalidPathspec

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class GcError(HeadwaterException):
    """A ``gc`` or ``delete`` the user asked for that cannot be done as asked."""

    headline = "Cannot collect garbage"


class Keep(enum.Enum):
    """Why a run stays."""

    IN_PROGRESS = "in progress"
    LAST = "--keep-last"
    NEWER = "--keep-newer-than"
    TAG = "--keep-tag"
    NAMED = "--keep-run"
    NOT_IN_SCOPE = "not in --flow"
    NOT_NAMED = "not deleted"
    NO_RUN_RECORD = "no run record"


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (or combined: ``1d12h``, ``1d 12h``);
    ``GcError`` if malformed."""
    compact = text.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(compact):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not compact or pos != len(compact):
        raise GcError(f"--keep-newer-than {text!r} is not a duration.",
                      hint="Give a number and a unit: 30d, 12h, 90m, 45s or 2w (units may combine: 1d12h or 1d 12h).")
    return total


def parse_run(spec: str, option: str) -> tuple[str, str]:
    """``(flow, run_id)`` of ``FLOW/RUN_ID``; a malformed one is a user error naming ``option``."""
    parts = spec.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise HeadwaterInvalidPathspec(f"{option} expects FLOW/RUN_ID, got {spec!r}.",
                                       hint=f"For example: {option} HelloFlow/1763841234567890.")
    return parts[0], parts[1]


@dataclass(frozen=True, slots=True)
class Retention:
    """Which runs ``gc`` keeps: a run stays when ANY policy keeps it (and a run in progress always).

    Parameters
    ----------
    keep_last : int, optional
        The newest N runs of each flow.
    keep_newer_than : float, optional
        Runs started less than this many seconds ago.
    keep_tags : tuple of str
        Runs with any of these tags (user or system tags).
    keep_runs : tuple of (flow, run_id)
        These runs.
    flows : tuple of str
        Only runs of these flows may be removed (empty: every flow).
    delete : tuple of (flow, run_id)
        ``headwater delete``: exactly these runs go, whatever else is set.
    """

    keep_last: int | None = None
    keep_newer_than: float | None = None
    keep_tags: tuple[str, ...] = ()
    keep_runs: tuple[tuple[str, str], ...] = ()
    flows: tuple[str, ...] = ()
    delete: tuple[tuple[str, str], ...] = ()

    @property
    def has_policy(self) -> bool:
        return bool(self.delete or self.keep_last is not None or self.keep_newer_than is not None
                    or self.keep_tags or self.keep_runs)


def parse_runs(specs: Iterable[str], option: str) -> tuple[tuple[str, str], ...]:
    """``(flow, run_id)`` of each ``FLOW/RUN_ID`` in ``specs`` (see ``parse_run``)."""
    return tuple(parse_run(s, option) for s in specs)


__all__ = ["GcError", "Keep", "Retention", "parse_duration", "parse_run", "parse_runs"]
