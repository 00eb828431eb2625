"""Worlds from a prompt: prompt → first frame time, and image → spec recovery on held-out scenes.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scenes.py [--frames 50] [--repeats 3]
        [--checkpoint RUN]     # a Tabletop run with a decoder: also time it in the browser

Prompt → first frame: parse a prompt (lark grammar + placement), build the MuJoCo tabletop from
the spec, reset and render its 64×64 frame; median over prompts and repeats, warm (the grammar
already compiled; a process's first prompt also pays ~0.4 s of grammar construction, shown).

Image → spec: ``--frames`` held-out scenes (``random_scene`` with seeds from 2·10⁹, 1–4 objects
of random kind, distinct colours, sizes, yaws; standard camera), each rendered at
reset; ``fit_image`` recovers them, once under the standard light and once under a light
drawn from the family's range with the scene. A frame counts when the recovered colours are
exactly the true set and every object's position is within 2 cm (target: ≥ 90% of frames). Kind
accuracy is per object. With ``--checkpoint``, the page of ``reverie play`` (Debian Chromium via
Playwright) is timed from pressing Build on a typed prompt to the first frame of the new world
drawn (median over prompts and repeats; the model's encode and decode of that frame included).
Prints a markdown table; the machine line comes first.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

PROMPTS = (
    "a heavy red cube and two bouncy blue balls on an icy table",
    "a red cube left of a blue ball, and a green cylinder behind the ball",
    "four tiny yellow cubes under low gravity",
    "a ball on a wooden cube, and a pink can near the cube",
)
HELD_OUT_SEED = 2_000_000_000
TOLERANCE = 0.02  # m


def prompt_to_frame(prompt: str) -> float:
    from reverie.envs import make
    from reverie.scenes.text import parse_prompt

    t0 = time.perf_counter()
    env = make("tabletop", scene=parse_prompt(prompt).spec)
    frame, _ = env.reset(seed=0)
    dt = time.perf_counter() - t0
    assert frame.shape == (64, 64, 3)
    env.close()
    return dt


def fit_frames(n: int, family_light: bool) -> dict[str, float]:
    from reverie.envs import make
    from reverie.scenes.fit import fit_image
    from reverie.scenes.sample import random_scene
    from reverie.scenes.spec import Camera, Light

    good, kinds_ok, objects, errors, seconds = 0, 0, 0, [], []
    for k in range(n):
        spec = random_scene(np.random.default_rng(HELD_OUT_SEED + k))
        spec = dataclasses.replace(spec, camera=Camera())
        if not family_light:
            spec = dataclasses.replace(spec, light=Light())
        env = make("tabletop", scene=spec)
        frame, _ = env.reset(seed=HELD_OUT_SEED + k)
        env.close()
        t0 = time.perf_counter()
        fit = fit_image(frame).spec
        seconds.append(time.perf_counter() - t0)
        got = {o.colour: o for o in fit.objects}
        err = [
            float(np.hypot(*np.subtract(got[o.colour].pose, o.pose)))
            for o in spec.objects
            if o.colour in got
        ]
        colours_exact = sorted(got) == sorted(o.colour for o in spec.objects)
        good += colours_exact and max(err) <= TOLERANCE
        kinds_ok += sum(got[o.colour].kind == o.kind for o in spec.objects if o.colour in got)
        objects += len(spec.objects)
        errors += err
    return {
        "frames": n,
        "good": good,
        "kind_accuracy": kinds_ok / objects,
        "median_error_cm": 100 * statistics.median(errors),
        "p90_error_cm": 100 * float(np.percentile(errors, 90)),
        "seconds_per_frame": statistics.median(seconds),
    }


def browser_prompt_to_frame(checkpoint: str, repeats: int) -> list[float]:
    """Seconds from Build to the new world's first frame on the page, per prompt and repeat."""
    import socket
    import threading

    import uvicorn
    from playwright.sync_api import sync_playwright

    from reverie.viewer.server import create_app

    app = create_app(checkpoint)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_function("window.reverie && window.reverie.liveFrames > 2")
            page.uncheck("#running")  # the page idles: only the rebuild is timed
            for _ in range(repeats):
                for prompt in PROMPTS:
                    n = page.evaluate("window.reverie.worlds")
                    frames = page.evaluate("window.reverie.frames")
                    page.fill("#prompt", prompt)
                    t0 = time.perf_counter()
                    page.click("#build")
                    page.wait_for_function(
                        f"window.reverie.worlds > {n} && window.reverie.frames > {frames}"
                    )
                    times.append(time.perf_counter() - t0)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=50, help="held-out frames to fit")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the prompt timings")
    p.add_argument("--checkpoint", default=None, help="Tabletop run (with decoder): browser time")
    args = p.parse_args()
    from reverie.hardware import machine_line
    from reverie.stats import wilson

    print(machine_line(), flush=True)  # every figure names its machine
    t0 = time.perf_counter()
    from reverie.scenes import text  # noqa: F401  (builds the grammar)

    cold = time.perf_counter() - t0
    times = [prompt_to_frame(q) for _ in range(args.repeats) for q in PROMPTS]
    print("| measure | value |")
    print("|---|---|")
    print(f"| grammar construction (once per process) | {cold:.2f} s |")
    print(
        f"| prompt → first frame (parse + build + reset + render, 64 px), median of "
        f"{len(times)} | {1000 * statistics.median(times):.0f} ms (max {1000 * max(times):.0f}) |"
    )
    if args.checkpoint:
        import torch

        torch.set_num_threads(1)
        b = browser_prompt_to_frame(args.checkpoint, args.repeats)
        print(
            f"| prompt → first frame in the browser (Build → new world drawn), median of "
            f"{len(b)} | {1000 * statistics.median(b):.0f} ms (max {1000 * max(b):.0f}) |"
        )
    for family_light in (False, True):
        r = fit_frames(args.frames, family_light)
        lo, hi = wilson(int(r["good"]), int(r["frames"]))
        light = "light drawn from the family's range" if family_light else "standard light"
        print(
            f"| image → spec ({light}): colours exact and every position within 2 cm | "
            f"{r['good']}/{r['frames']} = {100 * r['good'] / r['frames']:.0f}% "
            f"[{lo:.0f}, {hi:.0f}] |"
        )
        print(f"| ↳ kind accuracy per object | {100 * r['kind_accuracy']:.0f}% |")
        print(
            f"| ↳ position error median / p90 | {r['median_error_cm']:.2f} / "
            f"{r['p90_error_cm']:.2f} cm |"
        )
        print(f"| ↳ seconds per frame (median) | {r['seconds_per_frame']:.2f} s |")


if __name__ == "__main__":
    main()
