"""Each card component's HTML, the preview of artifact values, the DAG drawing and the YAML emitter."""

from __future__ import annotations

import builtins
import json
import re
import struct
import sys
import zlib
from pathlib import Path

import pytest

from headwater.cards import (
    Artifact, Error, Image, JSONViewer, Markdown, MetaflowCardComponent, ProgressBar, PythonCode, Table, ValueBox,
    VegaChart, YAMLViewer,
)
from headwater.cards.components import render_safely
from headwater.cards.dag import dag_svg
from headwater.cards.html import VEGA_MARKER, markdown, page
from headwater.cards.preview import preview
from headwater.cards.viewers import emit_yaml



def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG of solid red pixels, made with the standard library."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_cards_public_names_are_sorted_and_resolve():
    import headwater
    import headwater.cards as cards

    assert cards.__all__ == sorted(cards.__all__)
    assert all(getattr(cards, n) is not None for n in cards.__all__)
    assert cards.MetaflowCard is cards.HeadwaterCard and cards.CardComponent is cards.MetaflowCardComponent
    assert headwater.card.__name__ == "card"


def test_flow_help_with_cards_stays_light():
    import subprocess

    flow = Path(__file__).parents[1] / "flows" / "card_flow.py"
    code = (f"import sys, runpy; sys.argv=['x', '--help']\ntry:\n runpy.run_path({str(flow)!r}, run_name='__main__')"
            "\nexcept SystemExit: pass\nprint('\\n'.join(sys.modules))")
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert "headwater.cards.components" in mods
    for heavy in ("numpy", "headwater.client", "headwater.runtime", "sqlite3", "rich"):
        assert heavy not in mods, heavy


# -- Markdown ------------------------------------------------------------------------------


def test_markdown_blocks_and_inline():
    html = Markdown("# Title\n\nSome **bold**, *italic*, `code` and [a link](https://example.com).\n\n"
                    "- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n```python\nx = 1 < 2\n```").render()
    assert html.startswith('<div class="hw-md">')
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html and "<em>italic</em>" in html and "<code>code</code>" in html
    assert '<a href="https://example.com">a link</a>' in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert "<ol><li>first</li><li>second</li></ol>" in html
    assert "<blockquote><p>quoted</p></blockquote>" in html
    assert '<pre><code class="language-python">x = 1 &lt; 2</code></pre>' in html


def test_markdown_escapes_html_and_unsafe_links():
    html = markdown("<script>alert(1)</script> [x](javascript:alert(1)) `<b>`")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="#"' in html
    assert "<code>&lt;b&gt;</code>" in html


def test_markdown_update():
    m = Markdown("old")
    m.update("**new**")
    assert "<strong>new</strong>" in m.render() and "old" not in m.render()


# -- Table ---------------------------------------------------------------------------------


def test_table_rows_headers_and_nested_components():
    html = Table([[1, "a <b>", 2.5], [2, Markdown("**b**"), None]], headers=["n", "s", "x"]).render()
    assert "<th class=num>n</th><th>s</th>" in html
    assert html.count("<tr>") == 3  # header + 2 rows
    assert '<td class="num">1</td>' in html and '<td class="num">2.5</td>' in html
    assert "a &lt;b&gt;" in html
    assert '<td><div class="hw-md"><p><strong>b</strong></p></div></td>' in html


def test_table_update_and_disable_updates(capsys):
    t = Table([[1]], headers=["a"])
    t.update([[7], [8]])
    assert '<td class="num">8</td>' in t.render()
    frozen = Table([[1]], disable_updates=True)
    frozen.update([[9]])
    assert "9" not in frozen.render()
    assert "disable_updates=True" in capsys.readouterr().err


def test_table_from_dataframe_truncates():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": range(250), "name": [f"row{i}" for i in range(250)]})
    t = Table.from_dataframe(df)
    html = t.render()
    assert t.headers == ["x", "name"]
    assert html.count("<tr>") == 101
    assert "row99" in html and "row100" not in html
    assert "Showing the first 100 of 250 rows." in html
    full = Table.from_dataframe(df, truncate=False).render()
    assert full.count("<tr>") == 251 and "Showing" not in full


def test_table_from_dataframe_keeps_a_named_index():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"temp": [3.5, 19.0]}, index=pd.Index(["Oslo", "Lima"], name="city"))
    t = Table.from_dataframe(df)
    assert t.headers == ["city", "temp"]
    assert "<td>Oslo</td>" in t.render()


# -- Image ---------------------------------------------------------------------------------


def test_image_from_bytes_is_inlined_with_label():
    html = Image(tiny_png(), label="red").render()
    assert re.search(r'<img class="hw-img" alt="red" src="data:image/png;base64,iVBORw0KGgo[A-Za-z0-9+/=]+">', html)
    assert "<figcaption>red</figcaption>" in html


def test_image_rejects_bytes_that_are_not_an_image():
    assert "not a known image format" in Image(b"hello").render()
    assert "Image has no image bytes" in Image(None).render()


def test_image_from_pil_image():
    pil = pytest.importorskip("PIL.Image")
    html = Image.from_pil_image(pil.new("RGB", (5, 5), "blue"), label="blue").render()
    assert "data:image/png;base64," in html and "blue" in html


def test_image_from_matplotlib():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    try:
        assert "data:image/png;base64," in Image.from_matplotlib(fig).render()
        assert "data:image/png;base64," in Image.from_matplotlib(ax).render()
    finally:
        plt.close(fig)


# -- Artifact, Error, ProgressBar, ValueBox --------------------------------------------------


def test_artifact_named_and_truncated():
    html = Artifact(list(range(10_000)), name="big").render()
    assert '<span class="hw-artifact-name">big</span>' in html and "list" in html
    assert "10,000 items" in html
    long = Artifact("x" * 5000).render()
    assert "more characters" in long
    assert "more characters" not in Artifact("x" * 5000, compressed=False).render()


def test_error_shows_traceback():
    try:
        raise KeyError("missing thing")
    except KeyError as e:
        html = Error(e, title="Lookup failed").render()
    assert "<h3>Lookup failed</h3>" in html
    assert "Traceback (most recent call last)" in html and "KeyError: &#x27;missing thing&#x27;" in html
    assert "<h3>Error</h3>" in Error("plain message").render()


def test_progress_bar_update():
    bar = ProgressBar(max=8, label="epochs", unit="ep")
    bar.update(2, metadata="loss 0.3")
    html = bar.render()
    assert "2 / 8 ep (25%)" in html and "width:25.0%" in html and "loss 0.3" in html and "epochs" in html


def test_value_box_theme_and_change():
    html = ValueBox(title="Accuracy", value=0.9312, subtitle="val set", theme="success",
                    change_indicator="+1.2%").render()
    assert 'class="hw-valuebox success"' in html and "0.9312" in html and "val set" in html
    assert '<span class="hw-vb-change hw-up">+1.2%</span>' in html
    box = ValueBox(value=1, change_indicator="-3%", theme="nonsense")
    box.update(value=2)
    html = box.render()
    assert "hw-down" in html and 'class="hw-valuebox default"' in html and 'hw-vb-value">2 <span' in html


# -- viewers ----------------------------------------------------------------------------------


def test_json_viewer_pretty_coloured_and_copyable():
    html = JSONViewer({"a": 1, "b": [True, None, "x"]}, title="Config", max_height=200).render()
    assert '<span class="j-key">&quot;a&quot;</span>: <span class="j-num">1</span>' in html
    assert '<span class="j-lit">true</span>' in html and '<span class="j-str">&quot;x&quot;</span>' in html
    assert "data-hw-copy=" in html and "max-height:200px" in html and "Config" in html
    assert "<details open>" in html
    plain = JSONViewer('{"k": 2}', collapsible=False, show_copy_button=False).render()
    assert "<details" not in plain and "data-hw-copy" not in plain and "j-key" in plain


def test_yaml_viewer_with_and_without_pyyaml(monkeypatch):
    data = {"name": "run", "layers": [64, 32], "opts": {"lr": 0.1, "on": True}}
    assert "name: run" in YAMLViewer(data).render()
    real_import = builtins.__import__

    def no_yaml(name, *a, **kw):
        if name == "yaml":
            raise ImportError("no yaml here")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    html = YAMLViewer(data).render()
    assert "name: run\nlayers:\n  - 64\n  - 32\nopts:\n  lr: 0.1\n  &quot;on&quot;: true" in html


def test_emit_yaml_round_trips_through_pyyaml():
    yaml = pytest.importorskip("yaml")
    data = {"s": "yes", "n": None, "text": "two\nlines", "t2": "end\nnewline\n", "t3": " lead\nspace",
            "t4": "a\n\nb", "empty": [], "e": {}, "weird: key": "a #b",
            "items": [{"a": 1, "b": [1, 2]}, [3, 4], "x"], "num_str": "1.5", "f": 2.5}
    assert yaml.safe_load(emit_yaml(data)) == data


def test_python_code_from_function_and_string():
    def add_one(x):
        # comment
        return x + 1

    html = PythonCode(add_one).render()
    assert '<span class="j-lit">def</span> add_one(x):' in html
    assert '<span class="j-key"># comment</span>' in html and '<span class="j-num">1</span>' in html
    assert "&lt;" in PythonCode(code_string="a < b").render()
    with pytest.raises(ValueError, match="needs code_func= .* or code_string="):
        PythonCode()


def test_vega_chart_embeds_spec_and_marks_the_page(vega_builds):
    spec = {"mark": "bar", "data": {"values": [{"x": "</script>", "y": 1}]}}
    html = VegaChart(spec, show_controls=True).render()
    assert VEGA_MARKER in html and 'data-hw-actions="1"' in html
    sid = re.search(r'data-hw-spec="([^"]+)"', html).group(1)
    body = re.search(rf'<script type="application/json" id="{sid}">(.*?)</script>', html, re.S).group(1)
    assert "</script>" not in body and json.loads(body) == spec
    assert "vegaEmbed" in page("t", html) and "vegaEmbed" not in page("t", "<p>no chart</p>")


def test_vega_chart_from_altair():
    alt = pytest.importorskip("altair")
    chart = alt.Chart(alt.Data(values=[{"a": 1}])).mark_point().encode(x="a:Q")
    assert '"mark"' in VegaChart.from_altair_chart(chart).render()
    with pytest.raises(TypeError, match="needs an Altair chart"):
        VegaChart.from_altair_chart(42)


# -- robustness -------------------------------------------------------------------------------


class _Broken(MetaflowCardComponent):
    def render(self):
        raise ZeroDivisionError("bad maths")


def test_render_safely_turns_a_failure_into_an_error_box():
    html = render_safely(_Broken())
    assert "The _Broken component failed to render" in html and "ZeroDivisionError: bad maths" in html
    assert "failed to render" in Table([[_Broken()]]).render()


# -- previews ---------------------------------------------------------------------------------


def test_preview_of_plain_values():
    assert preview(3) == '<code class="hw-inline">3</code>'
    assert "&#x27;hi&#x27;" in preview("hi")
    assert "characters" in preview("a\nb")
    assert "1,000 keys" in preview({i: i for i in range(1000)})
    assert "data:image/png" in preview(tiny_png())
    assert "5 bytes" in preview(b"\x00\x01abc")


def test_preview_of_numpy_array():
    np = pytest.importorskip("numpy")
    html = preview(np.arange(1000, dtype=np.int64).reshape(500, 2))
    assert "shape (500, 2)" in html and "dtype int64" in html and "first 10 of 500 rows" in html
    assert "min 0 · max 999" in html


def test_preview_of_dataframe():
    pd = pytest.importorskip("pandas")
    html = preview(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert "2 rows × 2 columns" in html and "<th>b</th>" in html and "<td>y</td>" in html


def test_preview_survives_a_broken_repr():
    class Weird:
        def __repr__(self):
            raise RuntimeError("nope")

    assert "repr() failed: RuntimeError: nope" in preview(Weird())


# -- DAG --------------------------------------------------------------------------------------


def test_dag_svg_layers_and_highlight():
    info = {"order": ["start", "a", "b", "join", "end"], "steps": {
        "start": {"type": "split-static", "next": ["a", "b"], "in": []},
        "a": {"type": "linear", "next": ["join"], "in": ["start"]},
        "b": {"type": "linear", "next": ["join"], "in": ["start"]},
        "join": {"type": "join", "next": ["end"], "in": ["a", "b"]},
        "end": {"type": "end", "next": [], "in": ["join"]},
    }}
    svg = dag_svg(info, highlight="a")
    assert svg.startswith("<svg") and svg.count('class="hw-node') == 5 and svg.count('class="hw-edge"') == 5
    assert '<g class="hw-node hw-current" data-step="a">' in svg
    ys = {m.group(1): float(m.group(2)) for m in re.finditer(r'data-step="(\w+)"><title>[^<]*</title><rect x="[\d.]+" '
                                                             r'y="([\d.]+)"', svg)}
    assert ys["start"] < ys["a"] == ys["b"] < ys["join"] < ys["end"]


def test_dag_svg_draws_a_switch_loop_back():
    info = {"order": ["start", "loop", "end"], "steps": {
        "start": {"type": "start", "next": ["loop"], "in": []},
        "loop": {"type": "split-switch", "next": ["loop", "end"], "in": ["start", "loop"],
                 "switch_cases": {"again": "loop", "done": "end"}},
        "end": {"type": "end", "next": [], "in": ["loop"]},
    }}
    svg = dag_svg(info)
    assert svg.count('class="hw-edge"') == 3 and ">again</text>" in svg and ">done</text>" in svg
