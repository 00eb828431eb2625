"""``reverie report RUN``: an HTML report from a run's JSON and JSONL files.

    reverie report runs/tworoom          # writes runs/tworoom/report.html

Reads ``metrics.jsonl`` (training curves), every ``eval_*.json`` (success table with Wilson
intervals, planning time, episode GIFs) and ``demo.json`` when present. Plots are matplotlib PNGs
embedded in the page; GIFs are linked relative to the run directory. No stage's code is imported:
the report depends only on files.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from reverie.io import ReverieError, atomic_write_bytes


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line of a killed run
    return rows


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def learning_curves(rows: list[dict[str, Any]]) -> str | None:
    """One panel per numeric metric family logged with a step (loss terms, health, speed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if isinstance(r.get("step"), int | float)]
    keys = sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
    if not rows or not keys:
        return None
    cols = 3
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.6 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if key.startswith("loss") and all(p[1] > 0 for p in pts):
            ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def success_plot(evals: list[dict[str, Any]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not evals:
        return None
    fig, ax = plt.subplots(figsize=(1.3 * len(evals) + 2, 3))
    names = [f"{e['planner']}\n{e.get('label', '')}".strip() for e in evals]
    rates = [e["success_rate"] for e in evals]
    lo = [r - e["ci95"][0] for r, e in zip(rates, evals)]
    hi = [e["ci95"][1] - r for r, e in zip(rates, evals)]
    ax.bar(names, rates, yerr=[lo, hi], capsize=4, color="#4c72b0")
    ax.set_ylabel("success %")
    ax.set_ylim(0, 105)
    ax.tick_params(labelsize=8)
    return _png(fig)


def build_report(run: str | Path, out: Path | None = None) -> Path:
    run = Path(run)
    if not run.is_dir():
        raise ReverieError(f"run directory not found: {run}")
    rows = _read_jsonl(run / "metrics.jsonl")
    evals = []
    for path in sorted(run.glob("eval_*.json")):
        try:
            evals.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            raise ReverieError(f"evaluation result is corrupt (not valid JSON): {path}") from None
    demo = json.loads((run / "demo.json").read_text()) if (run / "demo.json").is_file() else None
    if not rows and not evals and demo is None:
        raise ReverieError(
            f"nothing to report in {run}: no metrics.jsonl, eval_*.json or demo.json"
        )
    order = {"cem": 0, "mppi": 1, "gradient": 2, "oracle": 3, "random": 4}
    evals.sort(key=lambda e: order.get(e.get("planner"), 9))

    e = html.escape
    parts = [f"<h1>Reverie report: {e(run.name)}</h1>"]
    if demo is not None:
        parts.append("<h2>Demo summary</h2><table><tr><th>stage</th><th>seconds</th></tr>")
        for stage, secs in demo.get("stage_seconds", {}).items():
            parts.append(f"<tr><td>{e(stage)}</td><td>{secs:.1f}</td></tr>")
        parts.append("</table>")
    if evals:
        parts.append(
            "<h2>Closed-loop planning (held-out start/goal pairs)</h2><table><tr>"
            "<th>planner</th><th>env</th><th>success</th><th>95% CI (Wilson)</th>"
            "<th>episodes</th><th>replaced (already solved)</th>"
            "<th>plan ms (median / p90)</th><th>env steps</th></tr>"
        )
        for r in evals:
            ms = (
                f"{r['plan_ms_median']:.1f} / {r['plan_ms_p90']:.1f}"
                if r.get("plan_ms_median") is not None
                else "-"
            )
            parts.append(
                f"<tr><td>{e(r['planner'])}</td><td>{e(r['env'])}</td>"
                f"<td><b>{r['success_rate']:.1f}%</b> ({r['successes']}/{r['episodes']})</td>"
                f"<td>[{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]</td><td>{r['episodes']}</td>"
                f"<td>{r['already_solved_replaced']}</td><td>{ms}</td><td>{r['env_steps']}</td>"
                "</tr>"
            )
        parts.append("</table>")
        plot = success_plot(evals)
        if plot:
            parts.append(f'<img src="{plot}" alt="success rates">')
    curves = learning_curves(rows)
    if curves:
        parts.append(f'<h2>Training curves</h2><img src="{curves}" alt="learning curves">')
    for r in evals:
        gifs = [rec for rec in r.get("records", []) if rec.get("video")]
        if gifs:
            parts.append(f"<h2>Episodes: {e(r['planner'])} (agent | goal)</h2><div>")
            for rec in gifs:
                ok = "success" if rec["success"] else "failure"
                parts.append(
                    f'<figure><img src="{e(rec["video"])}" alt="episode">'
                    f"<figcaption>ep {rec['episode']}: {ok}, {rec['steps']} steps"
                    "</figcaption></figure>"
                )
            parts.append("</div>")
    from reverie.simreal import simreal_section

    parts.append(simreal_section(run))
    from reverie.probe import probe_section

    parts.append(probe_section(run))
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 10px;text-align:left}figure{display:inline-block;margin:6px}"
        "figcaption{font-size:12px;text-align:center}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Reverie: {e(run.name)}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    out = out or run / "report.html"
    atomic_write_bytes(out, page.encode())
    return out
