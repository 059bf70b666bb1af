"""The HTML leaderboard in a real headless Chromium, offline: rows, sorting, plots, trails, escaping.

Needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver) and
selenium; a missing browser fails these tests, it never skips them.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from support.cli import run_main
from support.records import make_record, sample_results, write_runs

from prunebench import methods
from prunebench.harness import models
from prunebench.leaderboard import build_leaderboard, render_leaderboard

pytestmark = pytest.mark.slow  # headless Chromium: not in `make test-fast`

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1400,1000")  # fmt: skip
INJECTION = "<script>alert(1)</script>"
PSP_RUN = """experiment: facts
model: {name: lenet5}
data: {name: digits, batch_size: 64, image_size: 16}
method: {name: psp, hparams: {granularity: column}}
phases: {prune: 2, finetune: 0}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
seed: 0
threads: 1
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install with `apt-get install -y chromium chromium-driver`", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium missing: install the test extras (pip install selenium)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[str, object]:
    """The page of the sample results plus an ImageNet track that the LTP paper also reports."""
    root = sample_results(tmp_path_factory.mktemp("results"))
    imagenet = {"dataset": "imagenet", "model": "mobilenet_v2", "input_size": [3, 224, 224]}
    write_runs(root, [make_record("dense", top1=0.71, density=1.0, **imagenet), make_record("ltp", top1=0.69, density=0.5, **imagenet)])
    out = tmp_path_factory.mktemp("page") / "leaderboard.html"
    render_leaderboard(root, fmt="html", out=out)
    return out.as_uri(), build_leaderboard(root)


def _open(browser, page):
    browser.get(page[0])
    return browser


def _column(browser, section: int, header: str, body: str = "measured") -> list[str]:
    return browser.execute_script(
        """const [section, header, body] = arguments;
        const table = document.querySelectorAll("section.track")[section].querySelector("table");
        const index = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent === header);
        const rows = table.querySelector("tbody." + body);
        return rows ? Array.from(rows.rows).map(r => r.cells[index].getAttribute("data-v")) : [];""",
        section, header, body,
    )  # fmt: skip


def test_page_loads_offline_and_fetches_nothing(browser, page):
    _open(browser, page)
    assert browser.title == "prunebench leaderboard"
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    external = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src], link[href], a[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))"
    )
    assert all(link.startswith("#") for link in external), external


def test_every_row_is_shown(browser, page):
    _open(browser, page)
    board = page[1]
    sections = browser.find_elements("css selector", "section.track")
    assert [s.find_element("tag name", "h2").text for s in sections] == [t.key.label for t in board.tracks]
    for i, track in enumerate(board.tracks):
        for kind in ("measured", "reported"):
            assert _column(browser, i, "method", kind) == list(track.rows.loc[track.rows["kind"] == kind, "method"])
    imagenet = [t.key.dataset for t in board.tracks].index("imagenet")
    assert len(_column(browser, imagenet, "method", "reported")) == 7  # LTP Table 5
    failed = browser.find_element("id", "failed").text
    assert "RunFailed: loss is nan <b>at</b> epoch 3" in failed


def test_clicking_a_header_reorders_the_rows(browser, page):
    _open(browser, page)
    section = [t.key.granularity for t in page[1].tracks].index("unstructured")
    before = [float(v) for v in _column(browser, section, "top-1 %")]
    header = browser.find_elements("css selector", "section.track")[section].find_element("xpath", ".//th[text()='top-1 %']")
    header.click()
    ascending = [float(v) for v in _column(browser, section, "top-1 %")]
    assert ascending == sorted(before) and ascending != before
    header.click()
    assert [float(v) for v in _column(browser, section, "top-1 %")] == sorted(before, reverse=True)
    imagenet = [t.key.dataset for t in page[1].tracks].index("imagenet")
    browser.find_elements("css selector", "section.track")[imagenet].find_element("xpath", ".//th[text()='compression']").click()
    reported = [float(v) for v in _column(browser, imagenet, "compression", "reported")]
    assert reported == sorted(reported) and len(reported) == 7  # papers' rows sorted among themselves only


def test_plots_and_trails_render(browser, page):
    _open(browser, page)
    sizes = browser.execute_script(
        """return Array.from(document.querySelectorAll("section.track")).map(section => ({
            charts: Array.from(section.querySelectorAll("svg.chart")).map(svg =>
                Array.from(svg.querySelectorAll("circle, path.reported")).filter(mark => {
                    const box = mark.getBoundingClientRect(); return box.width > 0 && box.height > 0; }).length),
            trails: Array.from(section.querySelectorAll("svg.trail")).map(svg =>
                Array.from(svg.querySelectorAll("path.series")).filter(line => line.getBoundingClientRect().width > 0).length),
        }));"""
    )  # fmt: skip
    for track, drawn in zip(page[1].tracks, sizes):
        measured = track.rows[track.rows["kind"] == "measured"]
        compression, macs = drawn["charts"]  # the sample's records carry no latency: no speed chart, not an empty one
        assert compression >= len(measured) and macs >= len(measured), (track.key, drawn)
        assert drawn["trails"] == [2] * int(measured["n"].sum()), (track.key, drawn)  # density and val top-1 per run


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_top1_column_is_in_view_without_scrolling(browser, page, width):
    browser.set_window_size(width, 1000)
    try:
        _open(browser, page)
        inner, boxes = browser.execute_script(
            """return [window.innerWidth, Array.from(document.querySelectorAll("section.track th"))
                .filter(th => th.textContent === "top-1 %").map(th => th.getBoundingClientRect().right)];"""
        )  # fmt: skip
        assert boxes and all(0 < right <= inner for right in boxes), (width, inner, boxes)
        assert browser.execute_script("return window.scrollX") == 0
    finally:
        browser.set_window_size(1400, 1000)


def test_a_run_named_like_a_script_is_text(browser, page):
    from selenium.common.exceptions import NoAlertPresentException

    _open(browser, page)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - the property raises when no alert is open
    assert browser.execute_script("return document.scripts.length") == 1  # the page's own sorting script
    assert INJECTION in browser.find_element("tag name", "body").text
    captions = [e.text for e in browser.find_elements("css selector", "figcaption")]
    assert INJECTION in captions


def test_screenshot_is_not_blank(browser, page, tmp_path):
    from PIL import Image

    _open(browser, page)
    png = browser.get_screenshot_as_png()
    (tmp_path / "leaderboard.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, plots and tables, not one flat colour
    dominant = max(colours)[0] / (image.width * image.height)
    assert dominant < 0.9


def test_a_track_of_many_runs_draws_a_bounded_number_of_trails(tmp_path):
    """Thousands of runs would make a page of hundreds of MB: the first MAX_TRAILS in table
    order are drawn, and the summary says how many were left out."""
    from prunebench.leaderboard.views.html import MAX_TRAILS

    seeds = MAX_TRAILS + 6
    write_runs(tmp_path, [make_record("dense", seed=0, top1=0.92, density=1.0)] + [make_record("global", seed=s) for s in range(seeds)])
    text = render_leaderboard(tmp_path, fmt="html")
    section = text.split('<section class="track"')[1]  # the unstructured track: dense reference + global
    assert section.count('<svg class="trail"') == MAX_TRAILS
    assert f"the first {MAX_TRAILS} of {seeds + 1} runs in table order" in section


@pytest.fixture(scope="module")
def psp_page(tmp_path_factory) -> tuple[dict, str]:
    """A real two-epoch PSP run (LeNet-5, 16x16 digits): its record and its leaderboard page."""
    root = tmp_path_factory.mktemp("psp")
    (root / "psp.yaml").write_text(PSP_RUN)
    result = run_main("run", str(root / "psp.yaml"), "--out", str(root / "results"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = (root / "results").rglob("result.json")
    render_leaderboard(root / "results", fmt="html", out=root / "leaderboard.html")
    return json.loads(path.read_text()), (root / "leaderboard.html").as_uri()


def test_psp_alpha_histogram_is_recorded_and_shown(browser, psp_page):
    record, uri = psp_page
    method = methods.create("psp", granularity="column")
    model = method.attach(models.create("lenet5", 10, 3, 16))
    structures = sum(alpha.numel() for alpha in method.structure_parameters(model))
    (alpha,) = record["histograms"]
    assert sum(alpha["counts"]) == structures and alpha["threshold"] == 0.2
    browser.get(uri)
    bars = browser.execute_script(
        """return Array.from(document.querySelectorAll("details.histograms svg rect.bar")).map(bar =>
            [Number(bar.getAttribute("data-count")), bar.getBoundingClientRect().height]);"""
    )  # fmt: skip
    assert [count for count, _ in bars] == alpha["counts"]
    tallest = max(height for _, height in bars)
    assert all((height > 0) == (count > 0) for count, height in bars)
    assert [height for count, height in bars if count == max(alpha["counts"])][0] == tallest
