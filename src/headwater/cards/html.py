"""HTML building blocks of cards (internal): escaping, the page template with its
inline stylesheet, sections, a small Markdown converter and the Vega assets.

Every card is one self-contained HTML file: no network, no external files.
"""

from __future__ import annotations

import html as _html
import json
import re
from functools import lru_cache
from typing import Any, Iterable

#: Marker a component's HTML carries when it needs the Vega scripts inlined.
VEGA_MARKER = 'data-hw-vega="1"'


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return _html.escape(value if isinstance(value, str) else str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON safe to embed in a ``<script>`` element (no ``</script>`` or ``<!--`` inside)."""
    text = json.dumps(value, default=str, allow_nan=False) if not isinstance(value, str) else value
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


CSS = """
:root{--fg:#1d2430;--muted:#5b6473;--line:#e3e7ee;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;
--ok:#15803d;--bad:#b91c1c;--warn:#b45309;--zebra:#f8fafc;--code:#f3f4f6;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
*{box-sizing:border-box}
html,body{margin:0;padding:0;background:var(--bg);color:var(--fg);
font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.hw-page{max-width:1100px;margin:0 auto;padding:0 24px 48px}
.hw-header{background:linear-gradient(120deg,#1e3a8a,#2563eb);color:#fff;padding:22px 24px 18px;margin-bottom:24px}
.hw-header .hw-inner{max-width:1052px;margin:0 auto}
.hw-header h1{margin:0;font-size:24px;font-weight:650;letter-spacing:-.01em}
.hw-header .hw-sub{margin-top:4px;font:13px/1.4 var(--mono);opacity:.85;word-break:break-all}
.hw-badges{margin-top:10px;display:flex;flex-wrap:wrap;gap:8px}
.hw-badge{display:inline-block;padding:2px 10px;border-radius:999px;background:rgba(255,255,255,.16);font-size:12.5px}
.hw-badge.ok{background:#dcfce7;color:var(--ok)}.hw-badge.failed{background:#fee2e2;color:var(--bad)}
.hw-badge.running{background:#fef3c7;color:var(--warn)}
.hw-section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:0 0 20px;
box-shadow:0 1px 2px rgba(16,24,40,.04)}
.hw-section>h2{margin:0 0 12px;font-size:16px;font-weight:650;color:var(--fg);letter-spacing:.01em}
.hw-component{margin:0 0 14px}.hw-component:last-child{margin-bottom:0}
.hw-component:has(>.hw-valuebox){display:inline-block;vertical-align:top;margin-right:12px}
.hw-component>.hw-valuebox{margin:0}
.hw-md h1,.hw-md h2,.hw-md h3,.hw-md h4{margin:.6em 0 .35em;line-height:1.25}
.hw-md h1{font-size:22px}.hw-md h2{font-size:19px}.hw-md h3{font-size:16.5px}
.hw-md p{margin:.45em 0}.hw-md ul,.hw-md ol{margin:.4em 0;padding-left:1.6em}
.hw-md code,code.hw-inline{font-family:var(--mono);font-size:.9em;background:var(--code);padding:1px 5px;border-radius:4px}
.hw-md a{color:var(--accent)}
.hw-md blockquote{margin:.5em 0;padding:.2em 1em;border-left:3px solid var(--line);color:var(--muted)}
pre{font-family:var(--mono);font-size:13px;line-height:1.5;background:var(--code);border-radius:8px;padding:12px 14px;
overflow:auto;margin:0;white-space:pre}
pre.hw-wrap{white-space:pre-wrap;word-break:break-word}
.hw-table-wrap{display:inline-block;vertical-align:top;overflow:auto;max-width:100%;border:1px solid var(--line);
border-radius:8px}
table.hw-table{border-collapse:collapse;font-size:13.5px}
table.hw-table td .hw-md p{margin:0}
table.hw-table th{background:#eef2f7;text-align:left;font-weight:600;padding:7px 12px;border-bottom:1px solid var(--line);
white-space:nowrap}
table.hw-table td{padding:6px 12px;border-bottom:1px solid var(--line);vertical-align:top}
table.hw-table tbody tr:nth-child(even){background:var(--zebra)}
table.hw-table tbody tr:hover{background:#eef4ff}
table.hw-table td.num,table.hw-table th.num{text-align:right;font-variant-numeric:tabular-nums}
.hw-note{color:var(--muted);font-size:13px;margin-top:6px}
.hw-kv{display:grid;grid-template-columns:max-content 1fr;gap:6px 18px;font-size:14px}
.hw-kv dt{color:var(--muted)}.hw-kv dd{margin:0;font-family:var(--mono);font-size:13px;word-break:break-all}
.hw-artifact{border-top:1px solid var(--line);padding:12px 0}.hw-artifact:first-child{border-top:none;padding-top:0}
.hw-artifact-head{display:flex;gap:10px;align-items:baseline;margin-bottom:6px;flex-wrap:wrap}
.hw-artifact-name{font-family:var(--mono);font-weight:600}
.hw-type{font-family:var(--mono);font-size:12px;color:var(--muted);background:var(--code);padding:1px 6px;border-radius:4px}
.hw-img{max-width:100%;height:auto;border-radius:6px;border:1px solid var(--line);background:#fff}
figure.hw-figure{margin:0}figure.hw-figure figcaption{color:var(--muted);font-size:13px;margin-top:4px}
.hw-error{border:1px solid #fecaca;background:#fef2f2;border-radius:8px;padding:12px 14px}
.hw-error h3{margin:0 0 8px;color:var(--bad);font-size:15px}
.hw-error pre{background:#fff;border:1px solid #fde2e2}
.hw-progress .hw-progress-top{display:flex;justify-content:space-between;font-size:13.5px;margin-bottom:4px}
.hw-progress .hw-bar{height:10px;background:#e5e7eb;border-radius:999px;overflow:hidden}
.hw-progress .hw-fill{height:100%;background:var(--accent);border-radius:999px}
.hw-progress .hw-meta{color:var(--muted);font-size:12.5px;margin-top:3px}
.hw-valuebox{display:inline-block;min-width:180px;border:1px solid var(--line);border-radius:10px;padding:12px 16px;
background:#fff;vertical-align:top;margin:0 10px 10px 0}
.hw-valuebox .hw-vb-title{color:var(--muted);font-size:12.5px;text-transform:uppercase;letter-spacing:.05em}
.hw-valuebox .hw-vb-value{font-size:28px;font-weight:650;line-height:1.2;margin-top:2px;font-variant-numeric:tabular-nums}
.hw-valuebox .hw-vb-sub{color:var(--muted);font-size:13px}
.hw-valuebox .hw-vb-change{font-size:13px;font-weight:600}
.hw-valuebox.success{border-color:#bbf7d0;background:#f0fdf4}.hw-valuebox.warning{border-color:#fde68a;background:#fffbeb}
.hw-valuebox.danger{border-color:#fecaca;background:#fef2f2}.hw-valuebox.bg-highlight{border-color:#bfdbfe;background:#eff6ff}
.hw-up{color:var(--ok)}.hw-down{color:var(--bad)}
.hw-viewer{border:1px solid var(--line);border-radius:8px;overflow:hidden}
.hw-viewer-bar{display:flex;justify-content:space-between;align-items:center;background:#eef2f7;padding:5px 10px;
font-size:12.5px;color:var(--muted)}
.hw-viewer pre{border-radius:0;background:#fbfcfd}
.hw-viewer button{font:inherit;font-size:12px;border:1px solid var(--line);background:#fff;border-radius:5px;padding:1px 8px;
cursor:pointer}
.hw-viewer details>summary{cursor:pointer}
.j-key{color:#1e40af}.j-str{color:#166534}.j-num{color:#9a3412}.j-lit{color:#7c3aed}
.hw-dag{overflow:auto;text-align:center}
.hw-dag svg{max-width:100%;height:auto}
.hw-vega{min-height:40px}
.hw-footer{color:var(--muted);font-size:12px;text-align:center;margin-top:28px}
"""

_COPY_JS = """
document.querySelectorAll('[data-hw-copy]').forEach(function(b){b.addEventListener('click',function(){
var t=document.getElementById(b.getAttribute('data-hw-copy'));if(!t)return;
navigator.clipboard&&navigator.clipboard.writeText(t.textContent);b.textContent='Copied';
setTimeout(function(){b.textContent='Copy'},1200);});});
"""

_VEGA_INIT_JS = """
document.querySelectorAll('.hw-vega[data-hw-spec]').forEach(function(el){
var src=document.getElementById(el.getAttribute('data-hw-spec'));if(!src)return;
var spec=JSON.parse(src.textContent);var opts={renderer:'svg',actions:el.getAttribute('data-hw-actions')==='1'};
try{vegaEmbed(el,spec,opts).catch(function(e){el.textContent='Chart failed to render: '+e;});}
catch(e){el.textContent='Chart failed to render: '+e;}});
"""

_VEGA_FILES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
_SOURCEMAP = re.compile(r"//# sourceMappingURL=\S*\s*$")


@lru_cache(maxsize=1)
def vega_scripts() -> str:
    """The bundled vega, vega-lite and vega-embed builds as inline ``<script>`` elements."""
    from importlib import resources

    parts = []
    base = resources.files("headwater.cards") / "assets"
    for name in _VEGA_FILES:
        try:
            code = (base / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            # The Vega builds are fetched from npm at build time (`make cards-assets`);
            # without them a chart says so instead of breaking the card.
            return ("<script>document.querySelectorAll('.hw-vega').forEach(function(el){el.textContent="
                    "'This headwater install has no bundled Vega builds: run `make cards-assets`.';});</script>")
        # A literal "</script" would end the element early; "<\\/" means the same in JS.
        code = _SOURCEMAP.sub("", code).replace("</script", "<\\/script")
        parts.append(f"<script>/* {name}: see assets/NOTICE.md */\n{code}\n</script>")
    return "\n".join(parts)


def section(title: str | None, body: str, *, cls: str = "") -> str:
    """A white rounded section with an optional ``<h2>`` title."""
    head = f"<h2>{esc(title)}</h2>" if title else ""
    return f'<section class="hw-section {cls}">{head}{body}</section>'


def page(title: str, body: str, *, subtitle: str | None = None, badges: Iterable[tuple[str, str]] = (),
         footer: str | None = None, header: bool = True) -> str:
    """A complete, self-contained HTML document: header, ``body``, inline CSS and JS.

    The Vega scripts are inlined only when ``body`` holds a chart; ``header=False``
    leaves out the coloured title bar (the ``blank`` card).
    """
    badge_html = "".join(f'<span class="hw-badge {esc(c)}">{esc(t)}</span>' for t, c in badges)
    sub = f'<div class="hw-sub">{esc(subtitle)}</div>' if subtitle else ""
    badges_div = f'<div class="hw-badges">{badge_html}</div>' if badge_html else ""
    scripts = f"<script>{_COPY_JS}</script>"
    if VEGA_MARKER in body:
        vega = vega_scripts()
        scripts += vega if "no bundled Vega builds" in vega else vega + f"<script>{_VEGA_INIT_JS}</script>"
    foot = f'<div class="hw-footer">{esc(footer)}</div>' if footer else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        + (f'<header class="hw-header"><div class="hw-inner"><h1>{esc(title)}</h1>{sub}{badges_div}</div></header>'
           if header else '<div style="height:24px"></div>')
        + f'<main class="hw-page">{body}{foot}</main>{scripts}</body></html>\n'
    )


# -- Markdown -----------------------------------------------------------------------------
# A deliberately small CommonMark subset: headings, paragraphs, emphasis, inline
# code, fenced code, links, images, lists, block quotes and rules. Enough for the
# notes people put on cards, with no dependency.

_INLINE_CODE = re.compile(r"`([^`]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_SAFE_URL = re.compile(r"^(https?:|mailto:|#|/|\./|data:image/)", re.I)


def _url(u: str) -> str:
    return esc(u) if _SAFE_URL.match(u) or ":" not in u.split("/")[0] else "#"


def _inline(text: str) -> str:
    codes: list[str] = []

    def keep(m: re.Match[str]) -> str:
        codes.append(f"<code>{esc(m.group(1))}</code>")
        return f"\x00{len(codes) - 1}\x00"

    text = _INLINE_CODE.sub(keep, text)
    text = esc(text)
    text = _IMAGE.sub(lambda m: f'<img class="hw-img" alt="{m.group(1)}" src="{_url(_html.unescape(m.group(2)))}">',
                      text)
    text = _LINK.sub(lambda m: f'<a href="{_url(_html.unescape(m.group(2)))}">{m.group(1)}</a>', text)
    text = _BOLD.sub(r"<strong>\2</strong>", text)
    text = _ITALIC.sub(r"<em>\2</em>", text)
    text = _STRIKE.sub(r"<del>\1</del>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], text)


_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")


def markdown(text: str) -> str:
    """Convert a small Markdown subset to HTML (raw HTML in the input is escaped)."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush() -> None:
        if para:
            out.append("<p>" + _inline(" ".join(s.strip() for s in para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            flush()
            fence, lang = stripped[:3], stripped[3:].strip()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            cls = f' class="language-{esc(lang)}"' if lang else ""
            out.append(f"<pre><code{cls}>{esc(chr(10).join(body))}</code></pre>")
            i += 1
            continue
        if not stripped:
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", stripped)
        if m:
            flush()
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
            i += 1
            continue
        if re.match(r"^([-*_])(\s*\1){2,}$", stripped):
            flush()
            out.append("<hr>")
            i += 1
            continue
        if stripped.startswith(">"):
            flush()
            quote = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quote.append(lines[i].strip()[1:].lstrip())
                i += 1
            out.append(f"<blockquote>{markdown(chr(10).join(quote))}</blockquote>")
            continue
        if _LIST_ITEM.match(line):
            flush()
            ordered = _LIST_ITEM.match(line).group(2)[0].isdigit()  # type: ignore[union-attr]
            items: list[str] = []
            while i < len(lines):
                lm = _LIST_ITEM.match(lines[i])
                if lm:
                    items.append(lm.group(3))
                elif lines[i].strip() and items and lines[i].startswith((" ", "\t")):
                    items[-1] += " " + lines[i].strip()
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(it)}</li>" for it in items) + f"</{tag}>")
            continue
        para.append(line)
        i += 1
    flush()
    return "\n".join(out)


def iframe(html_doc: str, *, height: int = 600) -> str:
    """``html_doc`` shown in an ``<iframe srcdoc>`` (how notebooks show a card)."""
    return (f'<iframe srcdoc="{esc(html_doc)}" style="width:100%;height:{height}px;border:1px solid #e3e7ee;'
            'border-radius:8px" sandbox="allow-scripts allow-popups"></iframe>')
