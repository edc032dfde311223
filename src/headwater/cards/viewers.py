"""Card components that show structured text and charts (public through
``headwater.cards``): JSONViewer, YAMLViewer, PythonCode and VegaChart.
"""

from __future__ import annotations

import io
import itertools
import json
import keyword
import math
import re
import textwrap
import tokenize
from typing import Any, Callable

from .components import MetaflowCardComponent, _error_box
from .html import VEGA_MARKER, esc, script_json

_ids = itertools.count(1)


def _uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _plain(value: Any) -> Any:
    """``value`` as plain JSON-able data (numpy scalars and arrays, sets, tuples, dataclasses...)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return _plain(value.tolist())
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _plain(dataclasses.asdict(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _highlight_json(text: str) -> str:
    """Colour the keys, strings, numbers and literals of pretty-printed JSON."""
    token = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            cls = "j-key" if m.group(2) else "j-str"
            return f'<span class="{cls}">{esc(m.group(1))}</span>{m.group(2) or ""}'
        if m.group(3):
            return f'<span class="j-lit">{m.group(3)}</span>'
        return f'<span class="j-num">{m.group(4)}</span>'

    out, pos = [], 0
    for m in token.finditer(text):
        out.append(esc(text[pos:m.start()]))
        out.append(sub(m))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


class _TextViewer(MetaflowCardComponent):
    REALTIME_UPDATABLE = True
    _LABEL = ""

    def __init__(self, data: Any, collapsible: bool = True, max_height: str | int | None = None,
                 show_copy_button: bool = True, title: str | None = None) -> None:
        self.data = data
        self.collapsible = collapsible
        self.max_height = max_height
        self.show_copy_button = show_copy_button
        self.title = title

    def update(self, data: Any) -> None:
        """Show other data."""
        self.data = data

    def _text(self) -> tuple[str, str]:
        raise NotImplementedError

    def render(self) -> str:
        raw, highlighted = self._text()
        pid = _uid("hw-text")
        height = self.max_height
        style = ""
        if height is not None:
            style = f' style="max-height:{esc(f"{height}px" if isinstance(height, (int, float)) else height)}"'
        pre = f'<pre id="{pid}"{style}>{highlighted}</pre>'
        copy = f'<button type="button" data-hw-copy="{pid}">Copy</button>' if self.show_copy_button else ""
        label = esc(self.title or self._LABEL)
        if self.collapsible:
            n = raw.count("\n") + 1
            return (f'<div class="hw-viewer"><details open><summary class="hw-viewer-bar"><span>{label} '
                    f'({n} line{"s" if n != 1 else ""})</span>{copy}</summary>{pre}</details></div>')
        return f'<div class="hw-viewer"><div class="hw-viewer-bar"><span>{label}</span>{copy}</div>{pre}</div>'


class JSONViewer(_TextViewer):
    """Data shown as pretty, coloured JSON.

    Parameters
    ----------
    data : object
        A JSON string, or any value made of dicts, lists, strings and numbers
        (other values are shown as text).
    collapsible : bool, default True
        Show it in a box that can be folded away.
    max_height : int or str, optional
        Scroll past this height (pixels, or a CSS length).
    show_copy_button : bool, default True
    title : str, optional

    Examples
    --------
    >>> '<span class="j-key">&quot;a&quot;</span>' in JSONViewer({"a": 1}).render()
    True
    """

    _LABEL = "JSON"

    def _text(self) -> tuple[str, str]:
        data = self.data
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError:
                return str(self.data), esc(self.data)
        text = json.dumps(_plain(data), indent=2, ensure_ascii=False)
        return text, _highlight_json(text)


class YAMLViewer(_TextViewer):
    """Data shown as YAML (PyYAML is used when installed; a built-in emitter otherwise).

    Parameters
    ----------
    data : object
        Dicts, lists, strings, numbers, booleans and ``None``.
    collapsible, max_height, show_copy_button, title
        As for :class:`JSONViewer`.

    Examples
    --------
    >>> "name: run" in YAMLViewer({"name": "run"}).render()
    True
    """

    _LABEL = "YAML"

    def _text(self) -> tuple[str, str]:
        text = to_yaml(self.data)
        return text, esc(text)


def to_yaml(data: Any) -> str:
    """``data`` as YAML text, with PyYAML if it is installed, else :func:`emit_yaml`."""
    plain = _plain(data)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return emit_yaml(plain)
    return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=False)).rstrip("\n")


_PLAIN_SCALAR = re.compile(r"^[A-Za-z_/.][\w ./@()+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _yaml_scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if s and _PLAIN_SCALAR.match(s) and s.lower() not in _YAML_WORDS and not s.endswith((" ", ":")):
        return s
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid double-quoted YAML scalar


def emit_yaml(data: Any, indent: int = 0) -> str:
    """A small YAML emitter for plain data (dicts, lists, scalars; multi-line strings as blocks)."""
    pad = " " * indent
    if isinstance(data, dict):
        if not data:
            return pad + "{}"
        lines = []
        for k, v in data.items():
            key = _yaml_scalar(k)
            lines.append(_yaml_entry(f"{pad}{key}:", v, indent, in_list=False))
        return "\n".join(lines)
    if isinstance(data, list):
        if not data:
            return pad + "[]"
        return "\n".join(_yaml_entry(f"{pad}-", v, indent, in_list=True) for v in data)
    if isinstance(data, str) and _block_ok(data):
        return f"{pad}{_block(data, indent + 2)}"
    return pad + _yaml_scalar(data)


def _block_ok(s: str) -> bool:
    # A literal block keeps the text exactly when it has no leading space and at most one final newline.
    return "\n" in s.rstrip("\n") and not s[:1].isspace() and not s.endswith("\n\n") and "\r" not in s


def _block(s: str, indent: int) -> str:
    chomp = "|" if s.endswith("\n") else "|-"
    lines = s[:-1].split("\n") if s.endswith("\n") else s.split("\n")
    return chomp + "\n" + "\n".join((" " * indent + line) if line else "" for line in lines)


def _yaml_entry(head: str, v: Any, indent: int, *, in_list: bool) -> str:
    if isinstance(v, dict) and v:
        if in_list:
            inner = emit_yaml(v, indent + 2).lstrip(" ")
            return f"{head} {inner}"
        return f"{head}\n{emit_yaml(v, indent + 2)}"
    if isinstance(v, list) and v:
        if in_list:
            return f"{head} {emit_yaml(v, indent + 2).lstrip(' ')}"
        return f"{head}\n{emit_yaml(v, indent + 2)}"
    if isinstance(v, str) and _block_ok(v):
        return f"{head} {_block(v, indent + 2)}"
    if isinstance(v, dict):
        return f"{head} {{}}"
    if isinstance(v, list):
        return f"{head} []"
    return f"{head} {_yaml_scalar(v)}"


_TOKEN_CLASS = {tokenize.COMMENT: "j-key", tokenize.STRING: "j-str", tokenize.NUMBER: "j-num"}


def highlight_python(code: str) -> str:
    """Python source as HTML with comments, strings, numbers and keywords coloured."""
    lines = code.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out, pos = [], 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            cls = _TOKEN_CLASS.get(tok.type)
            if cls is None and tok.type == tokenize.NAME and keyword.iskeyword(tok.string):
                cls = "j-lit"
            if cls is None:
                continue
            start = offsets[tok.start[0] - 1] + tok.start[1]
            end = offsets[tok.end[0] - 1] + tok.end[1]
            out.append(esc(code[pos:start]))
            out.append(f'<span class="{cls}">{esc(code[start:end])}</span>')
            pos = end
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # unfinished code: colour what tokenized, show the rest plainly
    out.append(esc(code[pos:]))
    return "".join(out)


class PythonCode(MetaflowCardComponent):
    """Python source code, highlighted.

    Parameters
    ----------
    code_func : callable, optional
        A function (or class) whose source is shown.
    code_string : str, optional
        Source text to show instead.
    """

    def __init__(self, code_func: Callable[..., Any] | None = None, code_string: str | None = None) -> None:
        if code_func is None and code_string is None:
            raise ValueError("PythonCode needs code_func= (a function) or code_string= (source text).")
        self.code_func = code_func
        self.code_string = code_string

    def render(self) -> str:
        if self.code_string is not None:
            code = self.code_string
        else:
            import inspect

            try:
                code = inspect.getsource(self.code_func)  # type: ignore[arg-type]
            except (OSError, TypeError) as e:
                return _error_box("PythonCode could not find the source", f"{type(e).__name__}: {e}")
        code = textwrap.dedent(code).strip("\n")
        return f'<pre><code class="language-python">{highlight_python(code)}</code></pre>'


class VegaChart(MetaflowCardComponent):
    """A Vega or Vega-Lite chart, drawn in the browser by the bundled vega-embed.

    The card inlines the Vega scripts (about 850 KB) only when it holds a chart,
    and needs no network to show it.

    Parameters
    ----------
    spec : dict
        A Vega-Lite (or Vega) specification with its data inline.
    show_controls : bool, default False
        Show vega-embed's action menu (export as PNG/SVG, view source).

    Examples
    --------
    >>> spec = {"mark": "bar", "data": {"values": [{"x": "a", "y": 1}]},
    ...         "encoding": {"x": {"field": "x"}, "y": {"field": "y", "type": "quantitative"}}}
    >>> "hw-vega" in VegaChart(spec).render()
    True
    """

    REALTIME_UPDATABLE = True

    def __init__(self, spec: dict[str, Any], show_controls: bool = False) -> None:
        self.spec = spec
        self.show_controls = show_controls

    def update(self, spec: dict[str, Any] | None = None) -> None:
        """Replace the specification."""
        if spec is not None:
            self.spec = spec

    @classmethod
    def from_altair_chart(cls, altair_chart: Any, show_controls: bool = False) -> "VegaChart":
        """A chart from an Altair chart object (its ``to_dict()``)."""
        if not hasattr(altair_chart, "to_dict"):
            raise TypeError(f"VegaChart.from_altair_chart() needs an Altair chart, got {type(altair_chart).__name__}.")
        return cls(altair_chart.to_dict(), show_controls=show_controls)

    def render(self) -> str:
        spec = self.spec
        if not isinstance(spec, dict):
            return _error_box("VegaChart needs a dict", f"VegaChart(spec=...) got a {type(spec).__name__}.")
        sid = _uid("hw-spec")
        actions = "1" if self.show_controls else "0"
        return (f'<div class="hw-vega" {VEGA_MARKER} data-hw-spec="{sid}" data-hw-actions="{actions}"></div>'
                f'<script type="application/json" id="{sid}">{script_json(_plain(spec))}</script>')
