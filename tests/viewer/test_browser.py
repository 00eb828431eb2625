"""The play page in a real browser: Playwright drives Debian's Chromium against a live server.

    .venv/bin/python -m pytest tests/viewer/test_browser.py -q

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; never ``playwright install``). The page
loads with a tiny checkpoint; key presses move the agent and change both the real and the model's
canvases; Dream mode makes frames while the simulator stays put; a perturbation raises the
surprise meter; clicking the real frame plans and executes; a screenshot is saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"Debian Chromium not found at {CHROMIUM} (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def server_url(play_run: Path, serve):
    from reverie.viewer.server import create_app
    from reverie.viewer.session import SessionConfig

    app = create_app(play_run, session_config=SessionConfig(plan_max_steps=4), plan_fps=30)
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server_url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server_url)
    page.wait_for_function("window.reverie && window.reverie.liveFrames > 3", timeout=15_000)
    yield page
    page.close()
    assert not errors, errors


def canvas(page, name: str) -> str:
    return page.evaluate(f"document.getElementById('{name}').toDataURL()")


def reverie(page, expr: str):
    return page.evaluate(f"(() => {{ const S = window.reverie; return {expr}; }})()")


def test_keys_move_the_agent_and_both_canvases_change(page) -> None:
    real, recon = canvas(page, "real"), canvas(page, "recon")
    x0 = reverie(page, "S.state[0]")
    page.keyboard.down("ArrowRight")
    page.wait_for_function(f"window.reverie.state[0] > {x0 + 20}", timeout=10_000)
    page.keyboard.up("ArrowRight")
    assert canvas(page, "real") != real
    assert canvas(page, "recon") != recon
    assert reverie(page, "S.errors.length") == 0
    assert float(page.inner_text("#fps")) > 0 and page.inner_text("#latency") != "–"


def test_dream_mode_makes_frames_with_the_simulator_off(page) -> None:
    page.click("#dreamBtn")
    page.wait_for_function("window.reverie.mode === 'dream'")
    state = json.dumps(reverie(page, "S.state"))
    dream, count = canvas(page, "dream"), reverie(page, "S.dreamFrames")
    page.keyboard.down("a")
    page.wait_for_function(f"window.reverie.dreamFrames > {count + 10}", timeout=10_000)
    page.keyboard.up("a")
    assert json.dumps(reverie(page, "S.state")) == state  # the simulator did not move
    assert canvas(page, "dream") != dream
    page.click("#resync")
    page.click("#live")
    page.wait_for_function("window.reverie.mode === 'live'")


def test_perturbation_raises_the_surprise_meter(page, tmp_path: Path) -> None:
    page.wait_for_function("window.reverie.surprise.length >= 8", timeout=10_000)
    calm = reverie(page, "Math.max(...S.surprise)")
    page.click("button[data-kind=teleport]")
    page.wait_for_function("window.reverie.lastEvent.includes('teleported')", timeout=10_000)
    page.wait_for_function(f"Math.max(...window.reverie.surprise) > {3 * calm}", timeout=5_000)
    assert page.inner_text("#surpriseValue") != "–"
    shot = tmp_path / "play.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_click_plans_then_executes(page) -> None:
    box = page.locator("#real").bounding_box()
    page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + 0.3 * box["height"])
    page.wait_for_function(
        "window.reverie.plans >= 1 && window.reverie.planFrames >= 4 && !window.reverie.planning",
        timeout=15_000,
    )
    assert canvas(page, "imagined") != canvas(page, "goal")
    assert "steps" in page.inner_text("#planInfo")
