"""The page in a real headless browser (Debian's chromium, driven by Playwright): nothing
leaves the page, a click on a point makes it the query and the colours follow, the menus
switch layers and modes, and the browser computes what pcattn.viz computes in Python."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from vizhelpers import local_layer

from pcattn.nn.attention_map import AttentionMap, LayerAttention
from pcattn.viz import (
    attention_map,
    attention_received,
    attention_rollout,
    make_view,
    save_html,
)
from pcattn.viz.focus import focus_stats

BROWSER = os.environ.get("PCATTN_CHROMIUM") or shutil.which("chromium")
REQUIRED = os.environ.get("PCATTN_BROWSER_TESTS") == "1"  # set by tools/test.sh (and so CI)


@pytest.fixture(scope="module")
def browser():
    if BROWSER is None or not _has_playwright():
        if REQUIRED:
            pytest.fail("PCATTN_BROWSER_TESTS=1 but chromium or playwright is missing: "
                        "tools/setup.sh installs both")
        pytest.skip("no chromium here (apt-get install chromium) or no playwright "
                    "(pip install playwright); tools/test.sh installs them")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=BROWSER, args=[
            "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        yield b
        b.close()


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def model_layers(n=300, seed=0):
    """Stage 0: local attention over all points (4 heads); stage 1: global attention over
    a quarter of them, as a down-sampling model returns them; then attention pooling."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=g)
    pos = pos / pos.norm(dim=1, keepdim=True) * (1 + 0.3 * torch.rand(n, 1, generator=g))
    d = torch.cdist(pos, pos)
    idx = d.topk(12, largest=False).indices  # [N, 12]
    w = torch.softmax(torch.randn(n, 12, 4, generator=g) * 2, dim=1)
    sampled = torch.arange(0, n, 4)
    wg = torch.softmax(torch.randn(1, 2, sampled.numel(), sampled.numel(), generator=g) * 3, -1)
    wp = torch.softmax(torch.randn(sampled.numel(), 1, generator=g), dim=0)
    pool = AttentionMap("pool", wp, batch=torch.zeros(sampled.numel(), dtype=torch.long))
    layers = [local_layer("stage0.block0", w, idx, torch.arange(n)),
              LayerAttention("stage1.global", AttentionMap("global", wg), sampled, sampled),
              LayerAttention("pool", pool, torch.zeros(1, dtype=torch.long), sampled, False)]
    return layers, pos


def open_page(browser, path, errors, requests=None):
    """The page loaded and drawn once; console errors and refusals go to ``errors``, every
    request to ``requests``."""
    page = browser.new_page(viewport={"width": 1000, "height": 720})
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" or "Refused" in
            m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("window.pcattn && window.pcattn.renders > 0", timeout=60_000)
    assert page.evaluate("window.pcattn.error") is None
    return page


def rendered(page, renders, action):
    """Do ``action`` and wait for the page to draw again."""
    action()
    page.wait_for_function(f"window.pcattn.renders > {renders}", timeout=30_000)


def test_page_offline_click_menus_and_same_numbers_as_python(browser, tmp_path):
    layers, pos = model_layers()
    path = save_html(tmp_path / "page.html", pos, layers, title="test page", queries=[5])
    requests, errors = [], []
    page = open_page(browser, path, errors, requests)

    def shown() -> np.ndarray:
        return np.array(page.evaluate("Array.from(window.pcattn.values)"))

    def python_map(layer, qs, relative=True):
        return attention_map(layers, pos, torch.tensor(qs), layer, relative=relative).numpy()

    np.testing.assert_allclose(shown(), python_map(0, [5]), rtol=2e-3, atol=2e-3)
    for q, layer in ((17, 0), (17, 1), (202, 1)):
        js = page.evaluate(f"Array.from(window.pcattn.compute({{mode: 'rollout', layer: {layer},"
                           f" head: null, queries: [{q}]}}))")
        np.testing.assert_allclose(js, attention_rollout(layers, pos, torch.tensor([q]),
                                                         layer).numpy(), atol=2e-3)
    js = page.evaluate("Array.from(window.pcattn.compute({mode: 'rollout', layer: 2, "
                       "head: null, queries: [0]}))")
    np.testing.assert_allclose(js, attention_rollout(layers, pos, None, 2).numpy(), atol=2e-3)
    for relative in (False, True):
        js = page.evaluate(f"Array.from(window.pcattn.compute({{mode: 'received', layer: 0, "
                           f"head: 2, queries: [], relative: {str(relative).lower()}}}))")
        np.testing.assert_allclose(js, attention_received(layers, 300, 0, head=2,
                                                          relative=relative).numpy(),
                                   rtol=1e-2, atol=1e-2)
    js = page.evaluate("Array.from(window.pcattn.compute({mode: 'map', layer: 0, head: 1, "
                       "queries: [3, 40], relative: false}))")
    np.testing.assert_allclose(js, attention_map(layers, pos, torch.tensor([3, 40]), 0,
                                                 head=1).numpy(), atol=2e-3)

    before = page.screenshot()
    hovered = _point_under_mouse(page, avoid=5)
    renders = page.evaluate("window.pcattn.renders")
    page.mouse.down()  # plotly's 3D scene reports a click from a frame drawn with the button
    page.wait_for_timeout(150)  # down, as under a person's finger
    page.mouse.up()
    page.wait_for_function(f"window.pcattn.renders > {renders}", timeout=30_000)
    assert page.evaluate("window.pcattn.state.queries") == [hovered]
    np.testing.assert_allclose(shown(), python_map(0, [hovered]), rtol=2e-3, atol=2e-3)
    view = make_view(layers, pos, "map", 0, None, str(hovered))
    scale = view.scale()
    plotted = page.evaluate("(() => { const m = document.getElementById('plot').data[1].marker;"
                            " return [m.cmin, m.cmax, m.colorbar.ticktext,"
                            " m.colorbar.title.text]; })()")
    assert plotted[:2] == pytest.approx([scale.lo, scale.hi], abs=5e-3)
    assert "1 uniform" in plotted[2] and "1 = uniform" in plotted[3] and "layer 0" in plotted[3]
    page.mouse.move(0, 0)
    after_click = page.screenshot()
    assert _changed_pixels(before, after_click) > 100

    renders = page.evaluate("window.pcattn.renders")
    rendered(page, renders, lambda: page.select_option("#layer", "1"))
    assert "stage1.global" in page.inner_text("#status")
    np.testing.assert_allclose(shown(), python_map(1, [hovered]), rtol=2e-3, atol=2e-3)
    assert _changed_pixels(after_click, page.screenshot()) > 100

    renders = page.evaluate("window.pcattn.renders")
    rendered(page, renders, lambda: page.select_option("#mode", "rollout"))
    rollout = attention_rollout(layers, pos, torch.tensor([hovered]), 1).numpy()
    np.testing.assert_allclose(shown(), rollout, atol=2e-3)

    assert [u for u in requests if u != path.as_uri()] == []
    assert errors == []
    page.close()


def test_page_queries_modes_clicks_labels_and_focus(browser, tmp_path):
    layers, pos = model_layers()
    parts = ((pos[:, 2] > 0).long(), (pos[:, 2] > 0.1).long())
    path = save_html(tmp_path / "page.html", pos, layers, title="segmenter on lamp",
                     queries=[5, 60, 130, 250],
                     labels={"text": "predicted lamp, true lamp", "parts": parts})
    errors = []
    page = open_page(browser, path, errors)
    assert page.inner_text("#labels") == "predicted lamp, true lamp"
    bar = page.locator(".modebar").bounding_box()  # the colour bar's title is below the toolbar
    assert page.locator(".cbtitle").bounding_box()["y"] >= bar["y"] + bar["height"] - 1
    print(f"\npage of {pos.shape[0]} points: {path.stat().st_size / 1e6:.2f} MB, first draw "
          f"{page.evaluate('window.pcattn.firstDrawMs'):.0f} ms (on a loaded machine)")

    # the four queries the PNG circles are the page's queries too
    rings = page.evaluate("document.getElementById('plot').data[2].customdata")
    assert sorted(rings) == [5, 60, 130, 250]
    np.testing.assert_allclose(np.array(page.evaluate("Array.from(window.pcattn.values)")),
                               attention_map(layers, pos, torch.tensor([5, 60, 130, 250]),
                                             relative=True).numpy(), rtol=2e-3, atol=2e-3)
    focus = focus_stats(layers)[0]
    text = page.inner_text("#focus")
    assert f"entropy {float(focus.entropy.mean()):.3f}" in text
    assert f"uniform {focus.uniform_top1:.3f}" in text

    # a click beside a point (within the hover distance, 5+ pixels off its centre) picks it
    x, y, hovered = _off_centre(page, avoid=5)
    renders = page.evaluate("window.pcattn.renders")
    rendered(page, renders, lambda: page.mouse.click(x, y))
    assert page.evaluate("window.pcattn.state.queries") == [hovered]

    # shift-click adds a query
    other = _point_under_mouse(page, avoid=hovered)
    renders = page.evaluate("window.pcattn.renders")
    page.keyboard.down("Shift")
    rendered(page, renders, lambda: page.mouse.click(*page.evaluate("window.pcattn.hoveredAt")))
    page.keyboard.up("Shift")
    assert page.evaluate("window.pcattn.state.queries") == [hovered, other]
    np.testing.assert_allclose(np.array(page.evaluate("Array.from(window.pcattn.values)")),
                               attention_map(layers, pos, torch.tensor([hovered, other]),
                                             relative=True).numpy(), rtol=2e-3, atol=2e-3)

    # every mode in the one page, the parts with their legend, the layer slider
    for mode in ("received", "rollout", "predicted parts", "true parts", "map"):
        renders = page.evaluate("window.pcattn.renders")
        rendered(page, renders, lambda: page.select_option("#mode", mode))
        assert page.evaluate("window.pcattn.error") is None
        if mode.endswith("parts"):
            assert "part 0" in page.inner_text("#legend") and "part 1" in page.inner_text(
                "#legend")
    renders = page.evaluate("window.pcattn.renders")
    rendered(page, renders, lambda: page.fill("#depth", "1"))
    assert page.input_value("#layer") == "1" and "stage1.global" in page.inner_text("#status")
    page.click("#play")  # steps through depth: 1 -> 2 -> 0 ...
    page.wait_for_function("window.pcattn.state.layer === 2", timeout=30_000)
    assert page.input_value("#depth") == "2" and page.inner_text("#play") == "stop"
    page.click("#play")
    assert page.inner_text("#play") == "play"

    # tooltips of points without a value say so, never "point -"
    templates = page.evaluate("document.getElementById('plot').data.map(t => t.hovertemplate)")
    assert all("customdata" in t for t in templates) and "not read" in templates[0]
    assert errors == []
    page.close()


def _point_under_mouse(page, avoid: int) -> int:
    """Move the mouse over the plot until plotly reports a point other than ``avoid``, then
    onto that point's centre (plotly's 3D click wants the pointer within 5 pixels of it)."""
    box = page.locator("#plot").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for r in range(0, 200, 12):
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            page.mouse.move(cx + r * np.cos(a), cy + r * np.sin(a))
            page.wait_for_timeout(30)
            hovered = page.evaluate("window.pcattn.hovered")
            if hovered is not None and hovered != avoid:
                page.mouse.move(*page.evaluate("window.pcattn.hoveredAt"))
                page.wait_for_timeout(50)
                return page.evaluate("window.pcattn.hovered")
    pytest.fail("no point of the cloud could be hovered in the page")


def _off_centre(page, avoid: int) -> tuple[float, float, int]:
    """A mouse position where plotly reports hovering a point (not ``avoid``) whose centre is
    5 or more pixels away: ``(x, y, point)``."""
    box = page.locator("#plot").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for r in range(0, 240, 7):
        for a in np.linspace(0, 2 * np.pi, 16, endpoint=False):
            x, y = cx + r * np.cos(a), cy + r * np.sin(a)
            page.mouse.move(x, y)
            page.wait_for_timeout(30)
            hovered = page.evaluate("window.pcattn.hovered")
            at = page.evaluate("window.pcattn.hoveredAt")
            if hovered is not None and hovered != avoid and at and np.hypot(
                    at[0] - x, at[1] - y) >= 5:
                return x, y, hovered
    pytest.fail("plotly reported no hover off a point's centre")


def _changed_pixels(png_a: bytes, png_b: bytes) -> int:
    import io

    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("RGB")).astype(int)
    return int((np.abs(a - b).sum(-1) > 30).sum())


def test_layers_beyond_the_page_budget_are_left_out_and_say_so(browser, tmp_path):
    from pcattn.viz.html import fixed_size, page_data

    layers, pos = model_layers()
    first = 300 * 12 * 6 * 4 // 3 + 4 * 600  # layer 0's CSR: col + weight, nodes
    budget = fixed_size(300) + first + 100
    data = page_data(pos, layers, budget=budget)
    assert [bool(entry.get("left_out")) for entry in data["layers"]] == [False, True, True]
    assert data["layers"][0]["w"] is None  # its per-head weights do not fit either
    path = save_html(tmp_path / "small.html", pos, layers, queries=[5], budget=budget)
    assert path.stat().st_size < budget
    errors = []
    page = open_page(browser, path, errors)
    assert page.evaluate("Array.from(document.querySelectorAll('#layer option'), "
                         "o => o.disabled)") == [False, True, True]
    renders = page.evaluate("window.pcattn.renders")
    rendered(page, renders, lambda: page.select_option("#mode", "rollout"))
    assert page.evaluate("window.pcattn.error") is None  # layer 0 rolls out on its own
    page.evaluate("window.pcattn.state.layer = 1")
    page.select_option("#mode", "map")
    page.wait_for_function("(window.pcattn.error || '').includes('left out of this page')",
                           timeout=30_000)
    assert "left out of this page" in page.inner_text("#status")
    assert errors == []
    page.close()
