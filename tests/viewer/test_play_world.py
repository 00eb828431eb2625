"""Worlds in the play viewer: start in a prompt's world, rebuild it from the page's prompt box.

    PYTHONPATH=src .venv/bin/python -m pytest tests/viewer/test_play_world.py -q

A tiny Tabletop checkpoint (collected, trained and decoded here, ~20 s on one core) serves the
session tests and one real-browser test: typing a prompt in the page builds the new world, shows
its parsed spec, the ignored words and the out-of-range badge.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from reverie.scenes.world import world_from

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


@pytest.fixture(scope="module")
def tabletop_shared(tabletop_run: Path):
    from reverie.viewer.play_model import load_play_model

    return load_play_model(tabletop_run)


def _replies(session, msg: dict) -> list[dict]:
    return list(session.handle(json.dumps(msg)))


def test_session_starts_in_the_world_and_rebuilds_from_a_prompt(tabletop_shared) -> None:
    from reverie.viewer.session import PlaySession, SessionConfig

    world = world_from(prompt="a red cube and a dragon")
    session = PlaySession(tabletop_shared, SessionConfig(world=world))
    hello = session.hello()
    assert hello["worlds"] and hello["world"]["ignored"] == ["dragon"]
    assert session.env.n_objects == 1
    replies = _replies(session, {"type": "world", "prompt": "four huge bouncy balls"})
    kinds = [r["type"] for r in replies]
    assert kinds == ["world", "frame"] and replies[-1]["final"]
    assert replies[0]["out_of_range"] and "clamped" in replies[0]["warnings"][0]
    assert session.env.n_objects == 4 and len(replies[1]["state"]) == 4 + 13 * 4
    # a bad prompt is one error line; the world stays as it was
    (err,) = _replies(session, {"type": "world", "prompt": "five cubes"})
    assert err["type"] == "error" and "maximum of 4" in err["message"]
    assert session.env.n_objects == 4
    (err,) = _replies(session, {"type": "world"})
    assert err["type"] == "error" and "prompt" in err["message"]
    session.close()


def test_play_config_builds_the_start_world(tabletop_run: Path, tmp_path: Path) -> None:
    from reverie.scenes.spec import save_spec
    from reverie.viewer.server import PlayConfig

    cfg = PlayConfig(checkpoint=tabletop_run, prompt="a ball left of a cube")
    assert [o.kind for o in cfg.world().spec.objects] == ["ball", "cube"]
    save_spec(cfg.world().spec, tmp_path / "s.json")
    assert PlayConfig(checkpoint=tabletop_run, scene=tmp_path / "s.json").world().source == "scene"
    with pytest.raises(ValueError, match="at most one"):
        PlayConfig(checkpoint=tabletop_run, prompt="a ball", scene=tmp_path / "s.json")


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}")
def test_browser_types_a_prompt_and_sees_the_new_world(tabletop_run: Path, serve) -> None:
    from playwright.sync_api import sync_playwright

    from reverie.viewer.server import create_app
    from reverie.viewer.session import SessionConfig

    world = world_from(prompt="a red cube")
    app = create_app(tabletop_run, session_config=SessionConfig(world=world))
    with serve(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function("window.reverie && window.reverie.liveFrames > 2", timeout=15_000)
        assert page.is_visible("#worldGroup") and "red cube" in page.inner_text("#worldSpec")
        assert not page.is_visible("#rangeBadge")
        before = page.evaluate("document.getElementById('real').toDataURL()")
        page.fill("#prompt", "two huge yellow balls and a teapot")
        t0 = time.perf_counter()
        page.click("#build")
        page.wait_for_function("window.reverie.worlds >= 1", timeout=15_000)
        page.wait_for_function("window.reverie.state.length === 4 + 13 * 2", timeout=15_000)
        first_frame_s = time.perf_counter() - t0
        assert "yellow ball" in page.inner_text("#worldSpec")
        assert "ignored: 'teapot'" in page.inner_text("#ignored")
        assert page.is_visible("#rangeBadge")  # "huge" was clamped to the family's range
        assert page.evaluate("document.getElementById('real').toDataURL()") != before
        assert first_frame_s < 10  # the target (≤ 2 s) is measured in bench_scenes, unloaded
        browser.close()
        assert not errors, errors


def test_worlds_need_a_tabletop_checkpoint(play_run: Path) -> None:
    """A Two-Room model cannot play a tabletop world: refused in one line at start-up."""
    from reverie.io import ReverieError
    from reverie.viewer.server import create_app
    from reverie.viewer.session import SessionConfig

    world = world_from(prompt="a red cube")
    with pytest.raises(ReverieError, match="need the tabletop env") as e:
        create_app(play_run, session_config=SessionConfig(world=world))
    assert "\n" not in str(e.value)
