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
from pcattn.viz import attention_map, attention_received, attention_rollout, save_html
from pcattn.viz.colors import value_range

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


def test_page_offline_click_menus_and_same_numbers_as_python(browser, tmp_path):
    layers, pos = model_layers()
    path = save_html(tmp_path / "page.html", pos, layers, title="test page", query=5)
    page = browser.new_page(viewport={"width": 900, "height": 700})
    requests, refused = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("window.pcattn && window.pcattn.renders > 0", timeout=60_000)
    assert page.evaluate("window.pcattn.error") is None

    def shown() -> np.ndarray:
        return np.array(page.evaluate("Array.from(window.pcattn.values)"))

    def python_map(layer, q):
        return attention_map(layers, pos, torch.tensor([q]), layer).numpy()

    np.testing.assert_allclose(shown(), python_map(0, 5), atol=2e-3)
    for q, layer in ((17, 0), (17, 1), (202, 1)):
        js = page.evaluate(f"Array.from(window.pcattn.compute({{mode: 'rollout', layer: {layer},"
                           f" head: null, query: {q}}}))")
        np.testing.assert_allclose(js, attention_rollout(layers, pos, torch.tensor([q]),
                                                         layer).numpy(), atol=2e-3)
    js = page.evaluate("Array.from(window.pcattn.compute({mode: 'rollout', layer: 2, "
                       "head: null, query: 0}))")
    np.testing.assert_allclose(js, attention_rollout(layers, pos, None, 2).numpy(), atol=2e-3)
    js = page.evaluate("Array.from(window.pcattn.compute({mode: 'received', layer: 0, "
                       "head: 2, query: 0}))")
    np.testing.assert_allclose(js, attention_received(layers, 300, 0, head=2).numpy(),
                               atol=1e-2)

    before = page.screenshot()
    hovered = _point_under_mouse(page, avoid=5)
    renders = page.evaluate("window.pcattn.renders")
    page.mouse.down()  # plotly's 3D scene reports a click from a frame drawn with the button
    page.wait_for_timeout(150)  # down, as under a person's finger
    page.mouse.up()
    page.wait_for_function(f"window.pcattn.renders > {renders}", timeout=30_000)
    assert page.evaluate("window.pcattn.state.query") == hovered
    np.testing.assert_allclose(shown(), python_map(0, hovered), atol=2e-3)
    _, top = value_range(torch.from_numpy(python_map(0, hovered)), None, torch.tensor([hovered]))
    cmax = page.evaluate("document.getElementById('plot').data[1].marker.cmax")
    assert cmax == pytest.approx(top, abs=2e-3)
    page.mouse.move(0, 0)
    after_click = page.screenshot()
    assert _changed_pixels(before, after_click) > 100

    renders = page.evaluate("window.pcattn.renders")
    page.select_option("#layer", "1")
    page.wait_for_function(f"window.pcattn.renders > {renders}", timeout=30_000)
    assert "stage1.global" in page.inner_text("#status")
    np.testing.assert_allclose(shown(), python_map(1, hovered), atol=2e-3)
    assert _changed_pixels(after_click, page.screenshot()) > 100

    renders = page.evaluate("window.pcattn.renders")
    page.select_option("#mode", "rollout")
    page.wait_for_function(f"window.pcattn.renders > {renders}", timeout=30_000)
    rollout = attention_rollout(layers, pos, torch.tensor([hovered]), 1).numpy()
    np.testing.assert_allclose(shown(), rollout, atol=2e-3)

    assert [u for u in requests if u != path.as_uri()] == []
    assert refused == []
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


def _changed_pixels(png_a: bytes, png_b: bytes) -> int:
    import io

    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("RGB")).astype(int)
    return int((np.abs(a - b).sum(-1) > 30).sum())
