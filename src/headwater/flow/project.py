"""``@project``: flows that belong to one project, run on named branches
(authoring layer).

The branch is ``user.<user>`` by default, ``test.<branch>`` with ``--branch``,
``prod`` with ``--production`` and ``prod.<branch>`` with both (Metaflow's
names). A run gets the system tags ``project:<name>`` and
``project_branch:<branch>``, and its tasks see the names in ``current``.
"""

from __future__ import annotations

import re
from typing import Any

from ..exceptions import HeadwaterException
from .flow_decorators import FlowDecorator, make_flow_decorator

_INVALID = re.compile(r"[^a-z0-9_]")
MAX_NAME_LENGTH = 128
TAG_PROJECT = "project:"
TAG_BRANCH = "project_branch:"


class ProjectError(HeadwaterException):
    """A bad ``@project`` name or branch."""

    headline = "Bad @project"


def _check_name(value: str, what: str, fix: str) -> None:
    if _INVALID.search(value):
        raise ProjectError(f"The {what} {value!r} may contain only lowercase letters, digits and underscores.",
                           hint=fix)
    if len(value) > MAX_NAME_LENGTH:
        raise ProjectError(f"The {what} {value[:20]!r}... is longer than {MAX_NAME_LENGTH} characters.", hint=fix)


def branch_name(project: str, *, production: bool, branch: str | None, user: str) -> str:
    """The project branch for these choices (``ProjectError`` for a bad project or branch name)."""
    if not project:
        raise ProjectError("@project needs a name.", hint="Write @project(name='my_project').")
    _check_name(project, "@project name", "Rename the project, e.g. @project(name='my_project').")
    if branch:
        _check_name(branch, "branch name", "Pass a branch such as --branch my_feature.")
        return f"prod.{branch}" if production else f"test.{branch}"
    return "prod" if production else f"user.{user}"


class ProjectDecorator(FlowDecorator):
    """Put the flow in a project; runs go to a user, test or production branch.

    Parameters
    ----------
    name : str
        The project's name: lowercase letters, digits and underscores.
    production : bool, default False
        Use the production branch (also ``--production`` on the command line).
    branch : str, optional
        Use this branch (also ``--branch NAME``); ``test.<branch>``, or
        ``prod.<branch>`` with ``production``.

    Examples
    --------
    >>> @project(name="fraud")  # doctest: +SKIP
    ... class ScoreFlow(FlowSpec):
    ...     ...
    """

    name = "project"
    options = {
        "production": dict(is_flag=True, default=False, help="Use the @project's production branch "
                                                             "(with --branch: prod.<branch>)."),
        "branch": dict(default=None, metavar="NAME", help="Use this @project branch (test.<NAME>; the "
                                                          "default is user.<your user name>)."),
    }
    defaults = {"name": None, "production": False, "branch": None}
    fields: dict[str, Any] = {}  # set by flow_init or restore

    def hw_flow_init(self, flow_cls: type, graph: Any, options: dict[str, Any]) -> None:
        from ..config import load_settings

        for opt, default in (("production", False), ("branch", None)):
            given = options.get(opt, default)
            if opt in self._given and given not in (default, self._given[opt]):
                raise ProjectError(f"--{opt} was given on the command line and in @project({opt}=...).",
                                   hint=f"Drop one of the two: the decorator's {opt}= or --{opt}.")
        production = bool(self._given.get("production", options.get("production", False)))
        branch = self._given.get("branch", options.get("branch"))
        settings = load_settings()
        user = settings.extra.get("HEADWATER_OWNER") or settings.user or "unknown"
        name = branch_name(self.attributes["name"], production=production, branch=branch, user=user)
        self._set(flow_cls.__name__, name, is_user=branch is None and not production, production=production)

    def restore(self, run_record: dict[str, Any]) -> None:
        for tag in run_record.get("system_tags") or ():
            if tag.startswith(TAG_BRANCH):
                name = tag[len(TAG_BRANCH):]
                self._set(run_record["flow"], name, is_user=name.startswith("user."),
                          production=name == "prod" or name.startswith("prod."))

    def _set(self, flow_name: str, branch: str, *, is_user: bool, production: bool) -> None:
        project = self.attributes["name"]
        self.fields = {
            "project_name": project, "branch_name": branch, "is_user_branch": is_user,
            "is_production": production, "project_flow_name": f"{project}.{branch}.{flow_name}",
        }

    def system_tags(self) -> list[str]:
        if not self.fields:
            return []
        return [TAG_PROJECT + self.fields["project_name"], TAG_BRANCH + self.fields["branch_name"]]

    def current_fields(self) -> dict[str, Any]:
        return dict(self.fields)


project = make_flow_decorator(ProjectDecorator)
