"""Changing a run's user tags (reading layer, internal): validation and the
one tag event each change appends to the store (``runs/<Flow>/<run>/_tags/``).

The rules a tag obeys live in ``headwater.tags`` (one validation for every way a
tag comes in); system tags (``user:``, ``runtime:``, ...) cannot be removed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..exceptions import HeadwaterTaggingError
from ..store.records import replay_tags
from ..tags import MAX_USER_TAGS, check_tags
from .source import current_settings

if TYPE_CHECKING:
    from .core import Run


def change_tags(run: Run, add: Iterable[str], remove: Iterable[str], *, what: str) -> None:
    """Apply one tag change to ``run`` (removals first, then additions), atomically.

    Writes a single tag event unless the change would change nothing, then
    refreshes the run's cached row so ``run.tags`` shows it at once.
    """
    add_l = check_tags(add, arg=what)
    remove_l = check_tags(remove, arg=what)
    flow, run_id = run.path_components
    src = run._source
    row = run._get_run_row()
    current = src.current_tags(flow, run_id)
    system = set(row.system_tags or ())
    for t in remove_l:
        if t in system and t not in current:
            raise HeadwaterTaggingError(
                f"Cannot remove the tag {t!r} from run '{run.pathspec}': it is a system tag, and system tags "
                "cannot be changed.",
                hint="Only user tags (given with --tag or added later) can be removed or replaced.",
            )
    new = replay_tags(current, [{"remove": remove_l, "add": add_l}])
    if new == current:
        tags = current
    else:
        if len(new) > MAX_USER_TAGS and len(new) > len(current):
            raise HeadwaterTaggingError(
                f"Run '{run.pathspec}' would have {len(new)} user tags; a run may have at most {MAX_USER_TAGS}.",
                hint="Remove some tags first (remove_tags), or combine them.",
            )
        event = {"add": add_l, "remove": remove_l, "at": time.time(), "user": current_settings().user}
        tags = src.change_tags(flow, run_id, event)
    run._run_row = replace(row, tags=tuple(tags))
