"""Readable previews of artifact values for cards (internal): numbers and strings
as text, containers truncated, numpy arrays as shape/dtype + head, DataFrames as
tables, image bytes and PIL images as images.

Previews never import numpy or pandas: a value of those types means the library
is already loaded.
"""

from __future__ import annotations

import pprint
import reprlib
from typing import Any

from .components import Table, _matplotlib_png, _pil_png, image_mime, img_html
from .html import esc

_short = reprlib.Repr()
_short.maxlist = _short.maxtuple = _short.maxset = _short.maxfrozenset = _short.maxdeque = 20
_short.maxdict = 20
_short.maxstring = 200
_short.maxother = 200
_short.maxlevel = 4


def type_label(value: Any) -> str:
    """``module.Type`` for values outside builtins, else the bare type name."""
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__qualname__}"


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return esc(text)
    return f"{esc(text[:max_chars])}<span class=\"hw-note\">… ({len(text) - max_chars:,} more characters)</span>"


def _pre(text: str, max_chars: int) -> str:
    return f'<pre class="hw-wrap">{_cut(text, max_chars)}</pre>'


def _safe_repr(value: Any, max_chars: int) -> str:
    try:
        if isinstance(value, (dict, list, tuple, set, frozenset)):
            text = pprint.pformat(value, width=100, compact=True, sort_dicts=False)
            if len(text) > max_chars:
                text = _short.repr(value)
        else:
            text = repr(value)
    except Exception as e:  # a broken __repr__ must not break the card
        text = f"<{type_label(value)}: repr() failed: {type(e).__name__}: {e}>"
    return text


def _numpy_preview(arr: Any, max_chars: int) -> str:
    import numpy as np  # already imported: the value is an array

    info = [f"shape {tuple(arr.shape)}", f"dtype {arr.dtype}", f"{arr.nbytes:,} bytes"]
    stats = ""
    if arr.size and arr.dtype.kind in "iuf" and arr.size <= 50_000_000:
        try:
            with np.errstate(all="ignore"):
                stats = (f"min {arr.min():.6g} · max {arr.max():.6g} · mean {arr.mean():.6g}")
        except (TypeError, ValueError):
            stats = ""
    head = arr[: min(len(arr), 10)] if arr.ndim >= 1 else arr
    text = np.array2string(head, threshold=100, edgeitems=5, max_line_width=100)
    more = f" (first {len(head)} of {len(arr):,} rows)" if arr.ndim >= 1 and len(arr) > len(head) else ""
    meta = " · ".join(info)
    stat_line = f'<div class="hw-note">{esc(stats)}</div>' if stats else ""
    return (f'<div class="hw-note">{esc(meta)}{esc(more)}</div>{stat_line}'
            f'<pre>{_cut(text, max_chars)}</pre>')


def _is(value: Any, module: str, *names: str) -> bool:
    t = type(value)
    return t.__module__.split(".")[0] == module and (not names or t.__name__ in names)


def preview(value: Any, *, max_chars: int = 2000, only_repr: bool = False) -> str:
    """An HTML fragment that shows ``value`` readably.

    Parameters
    ----------
    value : object
        Any value.
    max_chars : int, default 2000
        Longest text shown before it is cut (the card says how much was left out).
    only_repr : bool, default False
        Show ``repr(value)`` only: no tables or images.
    """
    if only_repr:
        return _pre(_safe_repr(value, max_chars), max_chars)
    if value is None or isinstance(value, (bool, int, float, complex)):
        return f'<code class="hw-inline">{esc(repr(value))}</code>'
    if isinstance(value, str):
        if "\n" not in value and len(value) <= 120:
            return f'<code class="hw-inline">{esc(repr(value))}</code>'
        return _pre(value, max_chars) + f'<div class="hw-note">{len(value):,} characters</div>'
    if isinstance(value, (bytes, bytearray, memoryview)):
        mime = image_mime(value)
        if mime is not None:
            return img_html(bytes(value), mime)
        head = bytes(value[:64])
        more = "…" if len(value) > 64 else ""
        return f'<div class="hw-note">{len(value):,} bytes</div><pre>{esc(repr(head))}{more}</pre>'
    if _is(value, "numpy", "ndarray"):
        return _numpy_preview(value, max_chars)
    if _is(value, "pandas", "DataFrame"):
        t = Table.from_dataframe(value, truncate=True)
        rows, cols = value.shape
        return f'<div class="hw-note">{rows:,} rows × {cols:,} columns</div>{t.render()}'
    if _is(value, "pandas", "Series"):
        frame = value.to_frame(name=value.name if value.name is not None else "value")
        return f'<div class="hw-note">{len(value):,} values, dtype {esc(value.dtype)}</div>' + \
            Table.from_dataframe(frame, truncate=True).render()
    if _is(value, "PIL") and hasattr(value, "save") and hasattr(value, "mode"):
        return img_html(_pil_png(value), "image/png", f"{value.width}×{value.height} {value.mode}")
    if _is(value, "matplotlib", "Figure"):
        return img_html(_matplotlib_png(value), "image/png")
    text = _safe_repr(value, max_chars)
    size = ""
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        n = len(value)
        what = "keys" if isinstance(value, dict) else "items"
        size = f'<div class="hw-note">{n:,} {what}</div>'
    return _pre(text, max_chars) + size
