"""Cards opened in headless Chromium: the page renders, the chart draws, the table has its rows.

Set ``HEADWATER_CARD_SCREENSHOTS=<dir>`` to keep the screenshots (docs/images holds two).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

from flowrun import run_flow
from headwater.cards import get_cards


EXAMPLES = Path(__file__).parents[2] / "examples"


def _png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _keep(png: Path, name: str) -> None:
    out = os.environ.get("HEADWATER_CARD_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(out) / name)


def _card_file(root: Path, flow: str, step: str, use_root, **filters: str) -> Path:
    use_root(root)
    (task_dir,) = [p for p in root.glob(f"runs/{flow}/*/{step}/*") if p.is_dir()]
    run_id, task_id = task_dir.parts[-3], task_dir.name
    (card,) = get_cards(f"{flow}/{run_id}/{step}/{task_id}", **filters)
    return Path(card.path)


def _colours(png: Path, box: tuple[int, int, int, int]) -> set[tuple[int, int, int]] | None:
    """Colours in a region of the screenshot (sampled), or ``None`` without Pillow to read it."""
    try:
        from PIL import Image as image
    except ImportError:
        return None
    with image.open(png) as im:
        crop = im.convert("RGB").crop(box)
        return {crop.getpixel((x, y)) for x in range(0, crop.width, 2) for y in range(0, crop.height, 2)}


def test_default_card_in_a_browser(browser, tmp_path, use_root):
    root = tmp_path / ".headwater"
    r = run_flow("card_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    page = _card_file(root, "CardFlow", "start", use_root)

    dom = browser.dom(page)
    assert "<h1>CardFlow · start</h1>" in dom
    assert len(re.findall(r'<g class="hw-node[^"]*" data-step="', dom)) == 4
    assert re.search(r'<g class="hw-node hw-current" data-step="start">', dom)
    assert len(re.findall(r'class="hw-artifact" data-artifact="', dom)) >= 8
    assert re.search(r'<img class="hw-img" alt="image" src="data:image/png;base64,', dom)

    png = browser.screenshot(page, tmp_path / "default-card.png")
    assert _png_size(png) == (1200, 1600)
    assert png.stat().st_size > 30_000  # a blank page compresses to a few KB
    header = _colours(png, (0, 0, 1200, 100))
    assert header is None or any(b > 150 and r < 80 for r, g, b in header), "the blue header is missing"


def test_example_card_with_live_progress_and_chart(browser, vega_builds, tmp_path, use_root):
    root = tmp_path / ".headwater"
    r = run_flow(EXAMPLES / "cards.py", "run", root=root)
    assert r.returncode == 0, r.output
    page = _card_file(root, "CardsFlow", "train", use_root)
    dom = browser.dom(page)
    assert "12 / 12 (100%)" in dom and "<h1>Training</h1>" in dom
    assert re.search(r'<div class="hw-vega[^"]*".*?<svg[^>]*class="marks".*?Training loss', dom, re.S)
    assert len(re.findall(r'aria-roledescription="line mark"|aria-roledescription="point"', dom)) >= 12
    png = browser.screenshot(page, tmp_path / "example-card.png")
    assert _png_size(png) == (1200, 1600)
    _keep(png, "card-default.png")


def test_chart_and_table_card_in_a_browser(browser, vega_builds, tmp_path, use_root):
    root = tmp_path / ".headwater"
    r = run_flow("chart_card_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    page = _card_file(root, "ChartCardFlow", "start", use_root)
    html = page.read_text()
    assert "vegaEmbed" in html and not re.search(r'src="https?:', html)  # the scripts are inlined

    dom = browser.dom(page)
    chart = re.search(r'<div class="hw-vega[^"]*".*?</svg>', dom, re.S)
    assert chart, "vega-embed drew no SVG"
    svg = chart.group(0)
    assert 'class="marks"' in svg and "Accuracy by model" in svg
    bars = re.findall(r'<path aria-label="model: (\w+); accuracy: ([\d.]+)" [^>]*aria-roledescription="bar"', svg)
    assert sorted(bars) == [("alpha", "0.91"), ("beta", "0.87"), ("delta", "0.95"), ("gamma", "0.78")]
    table = re.search(r'<table class="hw-table">(.*?)</table>', dom, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1), re.S)
    assert [re.search(r"<td>(\w+)</td>", row).group(1) for row in rows] == ["alpha", "beta", "gamma", "delta"]

    png = browser.screenshot(page, tmp_path / "chart-card.png")
    assert _png_size(png) == (1200, 1600)
    # vega's default palette: the bars are drawn in the screenshot, not just in the DOM
    drawn = _colours(png, (0, 300, 1200, 800))
    assert drawn is None or any(abs(r - 76) < 6 and abs(g - 120) < 6 and abs(b - 168) < 6
                                          for r, g, b in drawn)
    _keep(png, "card-chart.png")
