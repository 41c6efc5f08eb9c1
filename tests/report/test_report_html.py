"""report.html: the report page, self-contained (figures embedded, nothing external), checked in a real headless
browser: the recommendation is on the page and every figure decodes."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report import rec_store

from mtlv.config import compose
from mtlv.report.html import to_html
from mtlv.report.page import build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# When the page has loaded: how many of its images the browser decoded to their last row (drawn on a canvas,
# which decodes synchronously: the bottom-right pixel of a figure's opaque background is opaque; a truncated
# or corrupt image is not, or has no width), written into the DOM for --dump-dom.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter((i) => {
    if (!i.complete || i.naturalWidth === 0) return false;
    const canvas = document.createElement("canvas");
    canvas.width = i.naturalWidth;
    canvas.height = i.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(i, 0, 0);
    return context.getImageData(i.naturalWidth - 2, i.naturalHeight - 2, 1, 1).data[3] === 255;
  }).length;
  const out = document.createElement("p");
  out.id = "probe";
  out.textContent = `decoded ${decoded} of ${images.length}`;
  document.body.appendChild(out);
});
</script>"""


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def page(tmp_path_factory, empty_db) -> Path:
    folder = tmp_path_factory.mktemp("html")
    uri = rec_store.build(folder / "store", empty_db, folds=(0, 1), seeds=(42,))
    return build_report(compose([f"tracking_uri={uri}", f"out={folder / 'report'}"], config_name="report"))


def test_markdown_subset_to_html(tmp_path):
    (tmp_path / "plots").mkdir()
    png = tmp_path / "plots" / "a.png"
    png.write_bytes(b"\x89PNG fake")
    text = to_html("# Title\n\n**bold** text\n\n| a | b \\| c |\n|---|---|\n| 1 | 2 |\n\n- item\n\n> note: x\n\n"
                   "![fig](plots/a.png)\n\n![gone](plots/missing.png)\n\n[csv](t.csv)\n", tmp_path)
    assert "<h1>Title</h1>" in text and "<strong>bold</strong>" in text and "<li>item</li>" in text
    assert "<th>b | c</th>" in text and "<td>2</td>" in text and "<blockquote>" in text
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in text            # base64 of the file's bytes
    assert 'alt="(figure not found: plots/missing.png)"' in text and 'src=""' in text
    assert '<a href="t.csv">csv</a>' in text


def test_report_html_is_self_contained(page):
    html = page.with_suffix(".html").read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) >= 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html
    assert "Chosen on validation: GMTL minilm (description, k=3)." in html


def test_report_html_in_a_headless_browser(page, tmp_path):
    exe = browser()
    if exe is None:
        pytest.skip("no chromium/chrome on PATH: .ci/run installs Debian's chromium with apt-get where it runs as "
                    "root or with password-less sudo")
    probed = tmp_path / "probed.html"
    probed.write_text(page.with_suffix(".html").read_text().replace("</body>", PROBE + "</body>"))
    # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start; the page is our own file
    dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=180).stdout
    figures = len(re.findall(r"<img ", page.with_suffix(".html").read_text()))
    assert figures >= 3 and f'<p id="probe">decoded {figures} of {figures}</p>' in dom
    assert "Chosen on validation: GMTL minilm (description, k=3).</strong>" in dom
    assert "no comparison can be significant at 0.05, whatever the results." in dom
