"""Is a lever real? Compare eval JSONs pair by pair (McNemar's exact test), not by their rates.

    .venv/bin/python benchmarks/bench_compare.py \\
        h5=runs/r/eval_cem.json,runs/r/eval_s1.json h10=runs/r/ev_h10.json,runs/r/ev_s1_h10.json

Each argument is a row, ``LABEL=JSON[,JSON...]``: ``reverie eval`` results whose records are
pooled by pair seed (several JSONs: several ``--seed`` ranges, so 100 pairs from two runs of
50). The first row is the baseline; every other row must cover the same held-out pairs in the
same env with the same episode budget and goal steps, or the script stops with a one-line error.
Per row: success, its Wilson interval, the pairs only the baseline solved and only this row
solved, and the two-sided exact McNemar p-value of that split. Two planners scored on the same
50 pairs often differ by 10 points with p > 0.2: a gap this script does not call significant
is not yet a lever. The class column is the CPU class each row's evals ran on (their JSONs'
``machine``; "unrecorded" before evals recorded it): rows of different classes are not compared
in BENCHMARKS.md. Reads JSONs only: runs in milliseconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reverie.cliargs import OneLineParser
from reverie.hardware import machine_line
from reverie.io import ReverieError
from reverie.stats import mcnemar, wilson

#: What two evals must share to be compared pair by pair (``config`` keys of the result JSON).
SAME = ("budget", "goal_steps")


def parse_row(text: str) -> tuple[str, list[Path]]:
    """``"h10=a.json,b.json"`` -> ("h10", [a.json, b.json])."""
    label, sep, paths = text.partition("=")
    if not sep or not label or not paths:
        raise ReverieError(f"row {text!r}: expected LABEL=JSON[,JSON...]")
    return label, [Path(p) for p in paths.split(",") if p]


def load_row(label: str, paths: list[Path]) -> dict[str, Any]:
    """The pooled row: success per pair seed, and the settings every JSON must agree on."""
    by_seed: dict[int, bool] = {}
    settings: dict[str, Any] | None = None
    classes: set[str] = set()
    for path in paths:
        try:
            result = json.loads(path.read_text())
            config = result["config"]
            these = {"env": result["env"], **{k: config[k] for k in SAME}}
            scored = [(int(r["seed"]), bool(r["success"])) for r in result["records"]]
        except FileNotFoundError:
            raise ReverieError(f"{label}: {path} not found") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ReverieError(f"{label}: {path} is not a reverie eval JSON ({e})") from None
        if settings is not None and these != settings:
            raise ReverieError(f"{label}: {path} was made with {these}, not {settings}")
        settings = these
        classes.add(str((result.get("machine") or {}).get("cpu_class", "unrecorded")))
        for seed, success in scored:
            if seed in by_seed:
                raise ReverieError(f"{label}: pair seed {seed} appears twice ({path})")
            by_seed[seed] = success
    assert settings is not None  # parse_row gives at least one path
    return {"label": label, "settings": settings, "success": by_seed, "class": classes}


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row against the first: rate, Wilson CI, discordant pairs and McNemar's p."""
    base = rows[0]
    out = []
    for row in rows:
        if row["settings"] != base["settings"]:
            raise ReverieError(
                f"{row['label']} was made with {row['settings']}, the baseline "
                f"{base['label']} with {base['settings']}"
            )
        if set(row["success"]) != set(base["success"]):
            missing = sorted(set(base["success"]) ^ set(row["success"]))
            raise ReverieError(
                f"{row['label']} and {base['label']} are not scored on the same pairs "
                f"({len(missing)} pair seeds differ, e.g. {missing[0]})"
            )
        s = row["success"]
        n, k = len(s), sum(s.values())
        only_base = sum(base["success"][seed] and not ok for seed, ok in s.items())
        only_row = sum(ok and not base["success"][seed] for seed, ok in s.items())
        out.append(
            {
                "label": row["label"],
                "success": round(100.0 * k / n, 1),
                "ci95": wilson(k, n),
                "pairs": n,
                "only_baseline": only_base,
                "only_this": only_row,
                "p": mcnemar(only_base, only_row),
                "class": " + ".join(sorted(row["class"])),
            }
        )
    return out


def format_table(table: list[dict[str, Any]]) -> str:
    base = table[0]["label"]
    lines = [
        f"| row | success | 95% CI | pairs | only {base} | only this row | McNemar p | class |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(table):
        lo, hi = r["ci95"]
        shown = "< 0.0001" if r["p"] == 0 else r["p"]  # mcnemar rounds to 4 places
        split = ("–", "–", "–") if i == 0 else (r["only_baseline"], r["only_this"], shown)
        lines.append(
            f"| {r['label']} | {r['success']:g}% | [{lo:g}, {hi:g}] | {r['pairs']} | "
            f"{split[0]} | {split[1]} | {split[2]} | {r['class']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", nargs="+", help="LABEL=JSON[,JSON...]; the first is the baseline")
    args = p.parse_args(argv)
    print(machine_line(), flush=True)  # the reader's; each row's class is the evals' own
    try:
        rows = [load_row(*parse_row(text)) for text in args.rows]
        table = compare(rows)
    except ReverieError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
