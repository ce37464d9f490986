"""Render each page of the built book at 1400 and 420 px in headless Chromium.

Counts, per page and width, what needs sideways scrolling (the page itself,
code inputs, outputs, show_source blocks, equations; tables, which scroll in
their own box) and the figures shown at under 60 % of their drawn width, with
the smallest scale at which the page shows a figure (``min_image_scale``), the
size in pixels that the smallest text of a figure drawn under the book's style
then has (``min_figure_text_px``: ``ganlib.plots.BOOK_STYLE``'s smallest size
times that scale) and the body text's size (``body_px``)::

    jupyter-book build . && python tools/browser_check.py _build/html

Needs Chromium, its driver and selenium (``apt install chromium
chromium-driver``, ``pip install selenium``); not part of the test suite.
"""

import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ganlib.plots import BOOK_STYLE  # noqa: E402

# every text size of the style is a number of points; drawn at the style's dpi
FIGURE_TEXT_PX = (
    min(
        v for k, v in BOOK_STYLE.items() if k.endswith("size") and k != "figure.figsize"
    )
    * BOOK_STYLE["figure.dpi"]
    / 72
)

root = Path(sys.argv[1])
pages = sorted((root / "chapters").glob("*.html")) + [root / "intro.html"]
opts = Options()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
    opts.add_argument(a)
driver = webdriver.Chrome(options=opts)
READY = (
    "return document.readyState === 'complete' && "
    "Array.from(document.images).every(i => i.complete);"
)
JS = r"""
const over = (sel) => Array.from(document.querySelectorAll(sel)).filter(
  e => e.scrollWidth > e.clientWidth + 2 && e.clientWidth > 0);
const pick = (els) => els.slice(0, 3).map(e => (e.innerText || '').slice(0, 60));
const imgs = Array.from(document.querySelectorAll('.cell_output img, .output img'))
  .filter(i => i.naturalWidth > 0 && i.clientWidth / i.naturalWidth < 0.6);
return {
  page_overflow: document.documentElement.scrollWidth > window.innerWidth + 2,
  code_inputs: over('.cell_input pre').length,
  outputs: over('.cell_output pre, .output pre').length,
  shown_source: over('.cell_output details pre').length,
  equations: over('mjx-container, .math').length,
  tables: over('.cell_output .dataframe, .cell_output table, .table-wrapper').length,
  small_images: imgs.length,
  min_image_scale: Math.min(1, ...Array.from(
    document.querySelectorAll('.cell_output img, .output img'))
    .filter(i => i.naturalWidth > 0)
    .map(i => Math.round(100 * i.clientWidth / i.naturalWidth) / 100)),
  body_px: parseFloat(getComputedStyle(document.querySelector('article p, main p'))
    .fontSize),
  examples: pick(over('.cell_input pre, .cell_output pre'))
};"""
rows = {}
for width in (1400, 420):
    driver.set_window_size(width, 1000)
    for page in pages:
        driver.get(page.as_uri())
        # measure a laid-out page: every image decoded, then a moment for layout
        for _ in range(50):
            if driver.execute_script(READY):
                break
            time.sleep(0.2)
        time.sleep(0.5)
        rows[f"{page.stem}@{width}"] = driver.execute_script(JS)
driver.quit()
for key, found in rows.items():
    counts = {name: value for name, value in found.items() if name != "examples"}
    counts["min_figure_text_px"] = round(FIGURE_TEXT_PX * found["min_image_scale"], 1)
    print(key, counts, found["examples"][:2])
