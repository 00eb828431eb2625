"""benchmarks/bench_compare.py: pair-by-pair comparison of eval JSONs, and McNemar's exact test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bench import load_benchmark

from reverie.stats import mcnemar


def test_mcnemar_exact_values() -> None:
    assert mcnemar(0, 6) == 0.0312  # 2 * (1/2)^6: six discordant pairs, all one way
    assert mcnemar(1, 7) == mcnemar(7, 1) == 0.0703  # 2 * (1 + 8) / 256
    assert mcnemar(5, 5) == mcnemar(0, 0) == 1.0  # no evidence either way
    assert mcnemar(3, 8) == 0.2266  # a 10-point gap on 50 pairs: not significant
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar(-1, 2)


def _eval(path: Path, successes: dict[int, bool], budget: int = 50, env: str = "reacher") -> Path:
    records = [{"seed": s, "success": ok} for s, ok in successes.items()]
    config = {"budget": budget, "goal_steps": 25}
    path.write_text(json.dumps({"env": env, "config": config, "records": records}))
    return path


def test_rows_pool_seed_ranges_and_compare_pair_by_pair(tmp_path: Path, capsys) -> None:
    bench = load_benchmark("bench_compare")
    base = {**{s: True for s in range(10)}, **{s: False for s in range(10, 20)}}
    # Two seed ranges of the baseline (as two `reverie eval --seed` runs), pooled into one row.
    a0 = _eval(tmp_path / "a0.json", {s: base[s] for s in range(10)})
    a1 = _eval(tmp_path / "a1.json", {s: base[s] for s in range(10, 20)})
    # The lever solves 7 of the baseline's failures and loses 1 of its successes.
    lever = dict(base) | {s: True for s in range(10, 17)} | {0: False}
    b = _eval(tmp_path / "b.json", lever)
    assert bench.main([f"base={a0},{a1}", f"lever={b}"]) == 0
    out = capsys.readouterr().out
    assert "| base | 50% | [29.93, 70.07] | 20 |" in out
    assert "| lever | 80% |" in out and "| 1 | 7 | 0.0703 |" in out
    # A landslide rounds to 0 at 4 places: shown as a bound, not as an impossible p of 0.
    many = _eval(tmp_path / "m.json", {s: True for s in range(20)})
    lost = _eval(tmp_path / "l.json", {s: False for s in range(20)})
    assert bench.main([f"all={many}", f"none={lost}"]) == 0  # 20 discordant, all one way
    assert "| 20 | 0 | < 0.0001 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "other, msg",
    [
        ({s: True for s in range(5)} | {99: True}, "not scored on the same pairs"),
        ("budget", "was made with"),
        ("env", "was made with"),
    ],
)
def test_rows_that_do_not_share_pairs_or_settings_are_refused(
    tmp_path: Path, capsys, other, msg: str
) -> None:
    bench = load_benchmark("bench_compare")
    pairs = {s: s % 2 == 0 for s in range(6)}
    a = _eval(tmp_path / "a.json", pairs)
    if other == "budget":
        b = _eval(tmp_path / "b.json", pairs, budget=100)
    elif other == "env":
        b = _eval(tmp_path / "b.json", pairs, env="pusht")
    else:
        b = _eval(tmp_path / "b.json", other)
    assert bench.main([f"a={a}", f"b={b}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


def test_bad_rows_are_one_line_errors(tmp_path: Path, capsys) -> None:
    bench = load_benchmark("bench_compare")
    (tmp_path / "junk.json").write_text("{not json")
    no_seed = {"env": "reacher", "config": {"budget": 50, "goal_steps": 25}, "records": [{}]}
    (tmp_path / "no_seed.json").write_text(json.dumps(no_seed))
    twice = _eval(tmp_path / "t.json", {1: True})
    for row, msg in [
        ("nolabel", "expected LABEL=JSON"),
        (f"x={tmp_path / 'missing.json'}", "not found"),
        (f"x={tmp_path / 'junk.json'}", "is not a reverie eval JSON"),
        (f"x={tmp_path / 'no_seed.json'}", "is not a reverie eval JSON"),
        (f"x={twice},{twice}", "appears twice"),
    ]:
        assert bench.main([row]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err
