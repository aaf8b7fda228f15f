"""``jitwatch report --out``: one self-contained HTML file that a real browser (Debian's
headless Chromium) draws with every plot showing something.

Chromium lays the page out twice: once with a small script that writes each plot's box
into the DOM (``--dump-dom``), once as is for a screenshot (``--screenshot``); each plot's
box in the screenshot must then hold drawn (non-white) pixels. ops/chromium installs the
browser; in CI (``CI`` set) a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.engine.exposure_html import PLOTS
from tests.paths import REPO
from tests.requires import unavailable

MIXED = REPO / "tests" / "golden" / "_mixed"
WIDTH = 1100

_MEASURE = """<script>
window.addEventListener('load', () => {
  const boxes = {};
  for (const figure of document.querySelectorAll('figure')) {
    const svg = figure.querySelector('svg');
    const r = (svg || figure).getBoundingClientRect();
    boxes[figure.id] = {x: r.x, y: r.y + window.scrollY, w: r.width, h: r.height,
                        svg: !!svg, paths: figure.querySelectorAll('svg path').length};
  }
  const out = document.createElement('pre');
  out.id = 'boxes';
  out.textContent = JSON.stringify({boxes, height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        unavailable("chromium is not installed (ops/chromium installs Debian's package)")
    return found


def _browser(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "report", "--decisions",
         str(MIXED / "decisions.jsonl"), "--events", str(MIXED / "events.jsonl"),
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "grant-hours by subject" in done.stdout
    return out


def test_the_page_needs_nothing_from_outside(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for tag in ("<script", "<link", "<img", "<iframe", "<object"):
        assert tag not in text
    # xmlns names a namespace, it is never fetched; any other URL would be.
    urls = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"'#][^"']*)""", text))
    assert not urls, urls
    assert "@import" not in text
    assert not re.search(r"url\(\s*[^#\s]", text)  # url(#clip) is the page's own


def test_every_plot_has_paths_with_extent(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for plot_id, _, _ in PLOTS:
        start = text.index(f'<figure id="plot-{plot_id}" data-drawn="1">')
        figure = text[start:text.index("</figure>", start)]
        drawn = [d for d in re.findall(r'<path d="([^"]+)"', figure)
                 if len(set(re.findall(r"-?\d+(?:\.\d+)?", d))) > 2]
        assert len(drawn) >= 3, plot_id


def test_chromium_draws_every_plot(page: Path, tmp_path: Path) -> None:
    from PIL import Image

    chromium = _chromium()
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>",
                                                                 _MEASURE + "</body>"))
    dom = _browser(chromium, tmp_path / "profile-1", f"--window-size={WIDTH},1000",
                   "--dump-dom", measured.as_uri()).stdout
    found = re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    layout = orjson.loads(found.group(1).replace("&quot;", '"'))
    boxes = layout["boxes"]
    assert sorted(boxes) == sorted(f"plot-{plot_id}" for plot_id, _, _ in PLOTS)

    shot = tmp_path / "report.png"
    _browser(chromium, tmp_path / "profile-2", f"--window-size={WIDTH},{layout['height']}",
             f"--screenshot={shot}", page.as_uri())
    keep = os.environ.get("JITWATCH_REPORT_SCREENSHOT")
    if keep:  # to look at it: JITWATCH_REPORT_SCREENSHOT=/tmp/report.png pytest ...
        shutil.copy(shot, keep)
    image = Image.open(shot).convert("L")
    assert image.size[0] == WIDTH
    for name, box in boxes.items():
        assert box["svg"], name
        assert box["paths"] > 3, name
        assert box["w"] > 300, (name, box)
        assert box["h"] > 100, (name, box)
        region = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["w"]),
                             int(box["y"] + box["h"])))
        histogram = region.histogram()
        pixels = region.size[0] * region.size[1]
        inked = pixels - sum(histogram[245:])  # darker than near-white
        assert inked > 0.02 * pixels, (name, inked, pixels)
        coloured = sum(histogram[40:200])  # bars and points, not only black text and axes
        assert coloured > 0.005 * pixels, (name, coloured, pixels)
