"""The sim-to-real gap, measured sim-to-sim: shifts, few-shot adaptation, system identification.

    from reverie.simreal.shifts import ShiftConfig, run_shift     # reverie shift
    from reverie.simreal.adapt import AdaptConfig, adapt          # reverie adapt
    from reverie.simreal.sysid import SysIDConfig, run_sysid      # parameter recovery
    html = simreal_section(Path("runs/tworoom/simreal"))          # for reverie report

``simreal_section`` turns the JSON those write (``shift_*.json``, ``adapt_curve.json``,
``sysid.json``, searched in ``run_dir`` and ``run_dir/simreal``) into an HTML section.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ci(ci: Any) -> str:
    return f"[{ci[0]:g}, {ci[1]:g}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else ""


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def simreal_section(run_dir: str | Path) -> str:
    """HTML for the sim-to-real results under ``run_dir`` ('' when there are none)."""
    run_dir = Path(run_dir)
    dirs = [d for d in (run_dir, run_dir / "simreal") if d.is_dir()]
    parts: list[str] = []

    shifts = [r for d in dirs for p in sorted(d.glob("shift_*.json")) if (r := _load(p))]
    shifts.sort(key=lambda r: (r.get("kind") != "source", r.get("shift", {}).get("name", "")))
    if shifts:
        rows = []
        for r in shifts:
            ol = r.get("open_loop") or {}
            mse = ol.get("mse") or []
            rows.append(
                [
                    r["shift"]["name"],
                    r.get("kind", ""),
                    ", ".join(f"{k}={v:g}" for k, v in r["shift"]["factors"].items())
                    + (f", latency={r['shift']['latency']}" if r["shift"].get("latency") else ""),
                    f"{r['success_rate']:g}% ({r['successes']}/{r['episodes']}) {_ci(r['ci95'])}",
                    f"{r.get('delta_sr', 0):+g} {_ci(r.get('delta_ci95'))}",
                    f"{mse[0]:.4g}" if mse else "",
                    f"{mse[-1]:.4g} (H={len(mse)})" if mse else "",
                ]
            )
        head = ["shift", "kind", "values", "SR (95% CI)", "ΔSR (95% CI)", "MSE@1", "MSE@H"]
        parts.append("<h3>Success under shifts</h3>" + _table(head, rows))

    for d in dirs:
        curve = _load(d / "adapt_curve.json")
        if curve:
            rows = [
                [
                    p["k"],
                    f"{p['success_rate']:g}% ({p['successes']}/{p['episodes']})",
                    _ci(p["ci95"]),
                ]
                for p in curve["points"]
            ]
            name = (curve.get("shift") or {}).get("name", "?")
            parts.append(
                f"<h3>Adaptation curve (shift {html.escape(name)}, params "
                f"{html.escape(str(curve.get('params')))})</h3>"
                + _table(["K episodes", "SR under shift", "95% CI"], rows)
            )

    for d in dirs:
        sysid = _load(d / "sysid.json")
        if sysid:
            metrics = list(sysid.get("mean_rel_error", {}))
            rows = []
            for name, row in sysid["factors"].items():
                rows.append(
                    [name, row["true"]]
                    + [
                        f"{row[m]['estimate']:g} (err {row[m]['rel_range_error']:.1%})"
                        for m in metrics
                    ]
                )
            parts.append(
                f"<h3>System identification ({sysid['episodes']} episodes, "
                f"{html.escape(str(sysid.get('method')))} search)</h3>"
                + _table(["factor", "true"] + [f"estimate: {m}" for m in metrics], rows)
            )

    if not parts:
        return ""
    return '<section id="simreal"><h2>Sim-to-real gap</h2>' + "".join(parts) + "</section>"


__all__ = ["simreal_section"]
