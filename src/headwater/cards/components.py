"""Card components (public through ``headwater.cards``): the building blocks users
append to ``current.card``. Each renders itself to an HTML fragment.

Markdown, Table, Image, Artifact, Error, ProgressBar and ValueBox live here;
the viewers (JSON, YAML, code) and VegaChart live in ``viewers.py``.
"""

from __future__ import annotations

import base64
import io
import sys
import traceback
from typing import Any, Sequence

from .html import esc, markdown


def _warn(message: str) -> None:
    sys.stderr.write(f"@card: {message}\n")


class MetaflowCardComponent:
    """Base class of card components.

    Subclass it and implement :meth:`render` to make a component of your own;
    components that change while the step runs implement :meth:`update` and set
    ``REALTIME_UPDATABLE = True``.

    Examples
    --------
    >>> class Shout(MetaflowCardComponent):
    ...     def __init__(self, text):
    ...         self.text = text
    ...     def render(self):
    ...         return "<h1>" + self.text.upper() + "</h1>"
    >>> Shout("hi").render()
    '<h1>HI</h1>'
    """

    #: Whether :meth:`update` changes what the component shows (live cards re-render it).
    REALTIME_UPDATABLE = False
    #: The id given with ``current.card.append(component, id=...)``, if any.
    component_id: str | None = None

    def render(self) -> str:
        """The component as an HTML fragment."""
        raise NotImplementedError(f"{type(self).__name__} must implement render().")

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Change what the component shows; shown on the next ``current.card.refresh()``."""
        _warn(f"{type(self).__name__} cannot be updated; update() ignored.")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


#: headwater's name for the component base class.
CardComponent = MetaflowCardComponent


def render_safely(component: Any) -> str:
    """``component.render()``, or an inline error box with the traceback if it fails.

    One broken component must not cost the user the rest of the card.
    """
    if isinstance(component, str):
        return component  # already HTML (a nested, pre-rendered fragment)
    try:
        out = component.render()
        if not isinstance(out, str):
            raise TypeError(f"{type(component).__name__}.render() returned a {type(out).__name__}, not an HTML str.")
        return out
    except Exception as e:
        title = f"The {type(component).__name__} component failed to render"
        return _error_box(title, "".join(traceback.format_exception(type(e), e, e.__traceback__)))


def _error_box(title: str, text: str) -> str:
    return f'<div class="hw-error"><h3>{esc(title)}</h3><pre class="hw-wrap">{esc(text)}</pre></div>'


class Markdown(MetaflowCardComponent):
    """Text written in Markdown.

    Parameters
    ----------
    text : str, optional
        Markdown source: headings, emphasis, code, lists, links, images, quotes.

    Examples
    --------
    >>> Markdown("# Results").render()
    '<div class="hw-md"><h1>Results</h1></div>'
    """

    REALTIME_UPDATABLE = True

    def __init__(self, text: str | None = None) -> None:
        self.text = text or ""

    def update(self, text: str | None = None) -> None:
        """Replace the text."""
        self.text = text or ""

    def render(self) -> str:
        return f'<div class="hw-md">{markdown(str(self.text))}</div>'


def _cell(value: Any) -> str:
    if isinstance(value, MetaflowCardComponent):
        return f"<td>{render_safely(value)}</td>"
    if isinstance(value, bool) or value is None:
        return f"<td>{esc(value)}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    if isinstance(value, float):
        return f'<td class="num">{esc(_fmt_float(value))}</td>'
    mod = type(value).__module__
    if mod == "numpy" and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        kind = value.dtype.kind
        if kind in "iu":
            return f'<td class="num">{int(value)}</td>'
        if kind == "f":
            return f'<td class="num">{esc(_fmt_float(float(value)))}</td>'
    return f"<td>{esc(value)}</td>"


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return type(v).__module__ == "numpy" and getattr(v, "dtype", None) is not None and v.dtype.kind in "iuf"


def _fmt_float(v: float) -> str:
    if v != v:
        return "NaN"
    if v.is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    return f"{v:.6g}"


class Table(MetaflowCardComponent):
    """A table; cells may hold values or other components.

    Parameters
    ----------
    data : list of list, optional
        The rows.
    headers : list of str, optional
        Column names.
    disable_updates : bool, default False
        Ignore :meth:`update` calls.

    Examples
    --------
    >>> html = Table([[1, "a"], [2, Markdown("**b**")]], headers=["n", "s"]).render()
    >>> "<th>s</th>" in html and "<strong>b</strong>" in html
    True
    """

    REALTIME_UPDATABLE = True
    #: Rows ``from_dataframe(truncate=True)`` keeps.
    MAX_ROWS = 100

    def __init__(self, data: Sequence[Sequence[Any]] | None = None, headers: Sequence[str] | None = None,
                 disable_updates: bool = False) -> None:
        self._data = [list(r) for r in (data or [])]
        self._headers = [str(h) for h in (headers or [])]
        self._disable_updates = disable_updates
        self.note: str | None = None

    @property
    def data(self) -> list[list[Any]]:
        return self._data

    @property
    def headers(self) -> list[str]:
        return self._headers

    def update(self, data: Sequence[Sequence[Any]] | None = None) -> None:
        """Replace the rows (ignored with ``disable_updates=True``)."""
        if self._disable_updates:
            _warn("this Table was made with disable_updates=True; update() ignored.")
            return
        self._data = [list(r) for r in (data or [])]

    @classmethod
    def from_dataframe(cls, dataframe: Any, truncate: bool = True) -> "Table":
        """A table of a pandas DataFrame.

        Parameters
        ----------
        dataframe : pandas.DataFrame
            The frame; a non-default index becomes the first column.
        truncate : bool, default True
            Show only the first ``Table.MAX_ROWS`` rows (the card notes how many there are).

        Returns
        -------
        Table
        """
        df = dataframe
        total = len(df)
        if truncate and total > cls.MAX_ROWS:
            df = df.head(cls.MAX_ROWS)
        index = df.index
        show_index = not (type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1)
        headers = [str(c) for c in df.columns]
        rows = [list(r) for r in df.itertuples(index=show_index, name=None)]
        if show_index:
            headers = [str(index.name or "")] + headers
        t = cls(rows, headers)
        if len(df) < total:
            t.note = f"Showing the first {len(df):,} of {total:,} rows."
        return t

    def _numeric_columns(self) -> set[int]:
        cols: set[int] = set()
        for i in range(len(self._headers)):
            values = [r[i] for r in self._data if i < len(r) and r[i] is not None]
            if values and all(_is_number(v) for v in values):
                cols.add(i)
        return cols

    def render(self) -> str:
        num = self._numeric_columns()
        head = "".join(f'<th{" class=num" if i in num else ""}>{esc(h)}</th>' for i, h in enumerate(self._headers))
        thead = f"<thead><tr>{head}</tr></thead>" if head else ""
        body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in self._data)
        note = f'<div class="hw-note">{esc(self.note)}</div>' if self.note else ""
        return (f'<div class="hw-table-wrap"><table class="hw-table">{thead}<tbody>{body}</tbody></table></div>'
                f"{note}")


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def image_mime(data: bytes | bytearray | memoryview) -> str | None:
    """The MIME type of image bytes (PNG, JPEG, GIF, WebP, BMP, SVG), or ``None``."""
    head = bytes(data[:256])
    for sig, mime in _SIGNATURES:
        if head.startswith(sig):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    return None


class Image(MetaflowCardComponent):
    """An image from its bytes (PNG, JPEG, GIF, WebP, BMP or SVG).

    Parameters
    ----------
    src : bytes
        The encoded image.
    label : str, optional
        A caption.
    disable_updates : bool, default True
        Ignore :meth:`update` calls.

    Examples
    --------
    >>> Image(b"not an image").render()[:22]
    '<div class="hw-error">'
    """

    REALTIME_UPDATABLE = True

    def __init__(self, src: bytes | None = None, label: str | None = None, disable_updates: bool = True) -> None:
        self.src = src
        self.label = label
        self._disable_updates = disable_updates

    def update(self, image: Any = None, label: str | None = None) -> None:
        """Replace the image: bytes, a PIL image or a matplotlib figure."""
        if self._disable_updates:
            _warn("this Image was made with disable_updates=True; update() ignored.")
            return
        self.src = image if isinstance(image, (bytes, bytearray)) else _to_png(image)
        if label is not None:
            self.label = label

    @classmethod
    def from_pil_image(cls, pilimage: Any, label: str | None = None, disable_updates: bool = False) -> "Image":
        """An image from a ``PIL.Image.Image`` (encoded as PNG)."""
        return cls(_pil_png(pilimage), label=label, disable_updates=disable_updates)

    @classmethod
    def from_matplotlib(cls, plot: Any, label: str | None = None, disable_updates: bool = False) -> "Image":
        """An image of a matplotlib figure (or axes), encoded as PNG."""
        return cls(_matplotlib_png(plot), label=label, disable_updates=disable_updates)

    def render(self) -> str:
        src = self.src
        if not isinstance(src, (bytes, bytearray, memoryview)) or not src:
            return _error_box("Image has no image bytes", f"Image(src=...) needs bytes, got {type(src).__name__}.")
        mime = image_mime(src)
        if mime is None:
            return _error_box("Image bytes are not a known image format",
                              "Image(src=...) takes PNG, JPEG, GIF, WebP, BMP or SVG bytes.")
        return img_html(bytes(src), mime, self.label)


def img_html(data: bytes, mime: str, label: str | None = None) -> str:
    """An ``<img>`` with the image inlined as a data URL, in a figure with an optional caption."""
    b64 = base64.b64encode(data).decode("ascii")
    alt = esc(label or "image")
    cap = f"<figcaption>{esc(label)}</figcaption>" if label else ""
    return f'<figure class="hw-figure"><img class="hw-img" alt="{alt}" src="data:{mime};base64,{b64}">{cap}</figure>'


def _pil_png(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _matplotlib_png(plot: Any) -> bytes:
    fig = plot
    if not hasattr(fig, "savefig"):
        fig = getattr(plot, "figure", None) or (plot.get_figure() if hasattr(plot, "get_figure") else None)
    if fig is None or not hasattr(fig, "savefig"):
        raise TypeError(f"Image.from_matplotlib() needs a matplotlib Figure or Axes, got {type(plot).__name__}.")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=100)
    return buf.getvalue()


def _to_png(obj: Any) -> bytes:
    if hasattr(obj, "savefig") or hasattr(obj, "get_figure"):
        return _matplotlib_png(obj)
    if hasattr(obj, "save") and hasattr(obj, "mode"):
        return _pil_png(obj)
    raise TypeError(f"Cannot make an image of a {type(obj).__name__}: pass bytes, a PIL image or a figure.")


class Artifact(MetaflowCardComponent):
    """A readable preview of any value (as the default card shows artifacts).

    Parameters
    ----------
    artifact : object
        The value.
    name : str, optional
        Shown above the preview.
    compressed : bool, default True
        Truncate long values; ``False`` shows up to 100,000 characters.
    """

    REALTIME_UPDATABLE = True

    def __init__(self, artifact: Any, name: str | None = None, compressed: bool = True) -> None:
        self.artifact = artifact
        self.name = name
        self.compressed = compressed

    def update(self, artifact: Any) -> None:
        """Show another value."""
        self.artifact = artifact

    def render(self) -> str:
        from .preview import preview, type_label

        body = preview(self.artifact, max_chars=2000 if self.compressed else 100_000)
        if not self.name:
            return body
        return (f'<div class="hw-artifact"><div class="hw-artifact-head"><span class="hw-artifact-name">'
                f'{esc(self.name)}</span><span class="hw-type">{esc(type_label(self.artifact))}</span></div>'
                f"{body}</div>")


class Error(MetaflowCardComponent):
    """An exception (or message) shown as an error box with its traceback.

    Parameters
    ----------
    exception : BaseException or str
        The exception; its traceback is shown when it has one.
    title : str, optional
        The box's title (default: the exception's type).
    """

    def __init__(self, exception: Any, title: str | None = None) -> None:
        self.exception = exception
        self.title = title

    def render(self) -> str:
        e = self.exception
        if isinstance(e, BaseException):
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            title = self.title or type(e).__name__
        else:
            text = str(e)
            title = self.title or "Error"
        return _error_box(title, text)


class ProgressBar(MetaflowCardComponent):
    """A progress bar for live cards.

    Parameters
    ----------
    max : int, default 100
        The value at 100 %.
    label : str, optional
    value : int, default 0
    unit : str, optional
        Shown after the numbers (e.g. ``"epochs"``).
    metadata : str, optional
        A line of text under the bar.

    Examples
    --------
    >>> bar = ProgressBar(max=10, label="Training")
    >>> bar.update(5)
    >>> "width:50.0%" in bar.render()
    True
    """

    REALTIME_UPDATABLE = True

    def __init__(self, max: int = 100, label: str | None = None, value: int = 0, unit: str | None = None,
                 metadata: str | None = None) -> None:
        self.max = max
        self.label = label
        self.value = value
        self.unit = unit
        self.metadata = metadata

    def update(self, new_value: int, metadata: str | None = None) -> None:
        """Move the bar to ``new_value`` (and change the text under it)."""
        self.value = new_value
        if metadata is not None:
            self.metadata = metadata

    def render(self) -> str:
        try:
            frac = max(0.0, min(1.0, float(self.value) / float(self.max))) if self.max else 0.0
        except (TypeError, ValueError):
            frac = 0.0
        unit = f" {self.unit}" if self.unit else ""
        meta = f'<div class="hw-meta">{esc(self.metadata)}</div>' if self.metadata else ""
        return (f'<div class="hw-progress"><div class="hw-progress-top"><span>{esc(self.label or "")}</span>'
                f"<span>{esc(self.value)} / {esc(self.max)}{esc(unit)} ({frac * 100:.0f}%)</span></div>"
                f'<div class="hw-bar" role="progressbar" aria-valuenow="{esc(self.value)}" '
                f'aria-valuemax="{esc(self.max)}"><div class="hw-fill" style="width:{frac * 100:.1f}%"></div></div>'
                f"{meta}</div>")


_THEMES = ("default", "success", "warning", "danger", "bg-highlight")


class ValueBox(MetaflowCardComponent):
    """One number (or short text) shown large, with a title and subtitle.

    Parameters
    ----------
    title : str, optional
    value : str or number, default ""
    subtitle : str, optional
    theme : {"default", "success", "warning", "danger", "bg-highlight"}, optional
    change_indicator : str, optional
        E.g. ``"+12%"`` (green) or ``"-3%"`` (red).
    """

    REALTIME_UPDATABLE = True

    def __init__(self, title: str | None = None, value: Any = "", subtitle: str | None = None,
                 theme: str | None = None, change_indicator: str | None = None) -> None:
        self.title = title
        self.value = value
        self.subtitle = subtitle
        self.theme = theme
        self.change_indicator = change_indicator

    def update(self, title: str | None = None, value: Any = None, subtitle: str | None = None,
               theme: str | None = None, change_indicator: str | None = None) -> None:
        """Change any of the fields given."""
        for k, v in (("title", title), ("value", value), ("subtitle", subtitle), ("theme", theme),
                     ("change_indicator", change_indicator)):
            if v is not None:
                setattr(self, k, v)

    def render(self) -> str:
        theme = self.theme if self.theme in _THEMES else "default"
        value = _fmt_float(self.value) if isinstance(self.value, float) else self.value
        change = ""
        if self.change_indicator:
            ci = str(self.change_indicator)
            cls = "hw-up" if ci.lstrip()[:1] in "+↑▲" or ci.lower().startswith("up") else (
                "hw-down" if ci.lstrip()[:1] in "-−↓▼" or ci.lower().startswith("down") else "")
            change = f' <span class="hw-vb-change {cls}">{esc(ci)}</span>'
        title = f'<div class="hw-vb-title">{esc(self.title)}</div>' if self.title else ""
        sub = f'<div class="hw-vb-sub">{esc(self.subtitle)}</div>' if self.subtitle else ""
        return (f'<div class="hw-valuebox {theme}">{title}<div class="hw-vb-value">{esc(value)}{change}</div>'
                f"{sub}</div>")
