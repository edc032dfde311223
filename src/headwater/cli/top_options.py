"""The click options of the top-level option table (interface layer).

The table itself (``headwater.top_options``) is shared with the Runner; this
module only turns its rows into ``click.Option`` objects for the flow CLI.
"""

from __future__ import annotations

from typing import Any

from ..top_options import TOP_OPTIONS, OptionKind, TopOption, check_choice


def click_params() -> list[Any]:
    """The click options of the table, in table order."""
    import click

    class _Choice(click.ParamType):
        name = "choice"

        def __init__(self, opt: TopOption) -> None:
            self.opt = opt

        def get_metavar(self, param: Any, *args: Any, **kwargs: Any) -> str:
            return "[" + "|".join(self.opt.supported) + "]"

        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            return check_choice(self.opt, str(value))

    params = []
    for o in TOP_OPTIONS:
        kw: dict[str, Any] = {"help": o.help}
        if o.envvar:
            kw["envvar"] = o.envvar
        if o.metavar:
            kw["metavar"] = o.metavar
        decls = [o.flag, o.name]
        if o.kind is OptionKind.SWITCH:
            decls = [f"{o.flag}/{o.off_flag}", o.name]
            kw.update(default=o.default, show_default=True)
        elif o.kind is OptionKind.CHOICE:
            kw.update(type=_Choice(o), default=o.supported[0], show_default=True)
        elif o.kind is OptionKind.MULTIPLE:
            kw.update(multiple=True)
        elif o.kind is OptionKind.PAIRS:
            kw.update(multiple=True, nargs=2)
        else:
            kw.update(default=o.default)
        kw.update(o.click_extra)
        params.append(click.Option(decls, **kw))
    return params


__all__ = ["click_params"]
