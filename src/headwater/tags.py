"""The rules every user tag obeys, wherever it comes in (``run --tag``, ``tag add``,
``Run.add_tag``, ``Runner(...).run(tags=...)``), and how a tag is shown (internal).

Metaflow's limits: a tag is a non-empty string of at most 500 characters and a
run has at most 50 user tags. Any character is allowed; control characters
(a newline, a tab, an escape) are shown escaped so a tag never breaks a table row.
"""

from __future__ import annotations

from collections.abc import Iterable

from .exceptions import HeadwaterTaggingError

#: The most characters a tag may have (Metaflow's MAX_TAG_SIZE).
MAX_TAG_LENGTH = 500
#: The most user tags a run may have (Metaflow's MAX_USER_TAG_SET_SIZE).
MAX_USER_TAGS = 50


def check_tags(tags: Iterable[str] | str, *, arg: str) -> list[str]:
    """``tags`` as a list, each one checked; ``arg`` names the argument in messages.

    Raises
    ------
    HeadwaterTaggingError
        ``tags`` is a single string, or a tag is not a string, is empty (or only
        whitespace), or is longer than ``MAX_TAG_LENGTH``.
    """
    if isinstance(tags, (str, bytes)):
        raise HeadwaterTaggingError(
            f"{arg} expects a list of tags, got the string {tags!r}.",
            hint=f"Pass [{tags!r}], or use the single-tag method (add_tag, remove_tag, replace_tag).",
        )
    try:
        out = list(tags)
    except TypeError:
        raise HeadwaterTaggingError(f"{arg} expects a list of tags, got {tags!r}.") from None
    for t in out:
        if not isinstance(t, str):
            raise HeadwaterTaggingError(f"Tag {t!r} is not a string ({type(t).__name__}).",
                                        hint="Tags are strings, e.g. 'experiment:7'.")  # fmt: skip
        if not t.strip():
            raise HeadwaterTaggingError(f"Tag {t!r} is empty.", hint="Tags are non-empty strings.")
        if len(t) > MAX_TAG_LENGTH:
            raise HeadwaterTaggingError(
                f"Tag {t[:40]!r}... is {len(t)} characters long; tags may have at most {MAX_TAG_LENGTH}.",
                hint="Shorten the tag.",
            )
    return out


def check_run_tags(tags: Iterable[str], *, arg: str) -> list[str]:
    """The tags a new run starts with, checked as ``check_tags`` does and counted.

    Raises
    ------
    HeadwaterTaggingError
        A tag is invalid, or there are more than ``MAX_USER_TAGS`` distinct tags.
    """
    out = check_tags(tags, arg=arg)
    if len(set(out)) > MAX_USER_TAGS:
        raise HeadwaterTaggingError(
            f"{arg} gives {len(set(out))} distinct tags; a run may have at most {MAX_USER_TAGS}.",
            hint="Give fewer tags, or combine them.",
        )
    return out


def shown_tag(tag: str) -> str:
    """``tag`` as printed in tables and lists: control characters escaped (``'a\\nb'`` → ``a\\nb``).

    When anything is escaped, backslashes are too, so two different tags never print the same.
    """
    if tag.isprintable() and "\\" not in tag:
        return tag
    return "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii") for c in tag)


__all__ = ["MAX_TAG_LENGTH", "MAX_USER_TAGS", "check_run_tags", "check_tags", "shown_tag"]
