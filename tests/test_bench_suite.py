"""benchmarks/bench_suite.py, for real: the --quick suite on Two-Room, then again (every stage
skipped, no file touched), and bad input as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _bench import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "bench_suite.py"
STAGES = ("collect", "train", "probe", "eval_cem", "eval_random", "eval_oracle")


def run_suite(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SUITE), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def results(cell: Path) -> dict[str, float]:
    """mtime of every stage output under ROOT/ENV (the logs are appended on every run)."""
    return {
        str(p.relative_to(cell)): p.stat().st_mtime_ns
        for p in cell.rglob("*")
        if p.is_file() and "logs" not in p.parts and p.name != "suite_log.jsonl"
    }


def test_quick_suite_runs_every_stage_then_resumes_without_rerunning(tmp_path: Path) -> None:
    args = ("--envs", "tworoom", "--quick", "--threads", "1", "--root", str(tmp_path))
    first = run_suite(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert lines[0].startswith("machine: "), lines[:2]
    for stage in STAGES:
        assert f"[tworoom] {stage:<11} run: " in first.stdout, stage
    assert any(x.startswith("| tworoom |") for x in lines), first.stdout

    suite = json.loads((tmp_path / "suite.json").read_text())
    (row,) = suite["rows"]
    assert row["env"] == "tworoom" and "error" not in row
    assert set(row["planners"]) == {"cem", "random", "oracle"}
    for planner, p in row["planners"].items():
        assert p["n"] == 2, planner
        assert p["ci95"][0] <= p["success_rate"] <= p["ci95"][1], planner
    assert row["train_steps"] == 30 and row["train_seconds"] > 0
    assert row["probe"]["mean_r2"] is not None
    assert row["machine_line"].startswith("machine: ") and row["machine"]["torch"]
    for name in ("data/manifest.json", "model/config.json", "model/probe_none.json"):
        assert (tmp_path / "tworoom" / name).is_file(), name
    assert (tmp_path / "tworoom" / "model" / "eval_oracle.json").is_file()

    before = results(tmp_path / "tworoom")
    again = run_suite(*args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for stage in STAGES:
        assert f"[tworoom] {stage:<11} skip: " in again.stdout, (stage, again.stdout)
    assert " run: " not in again.stdout
    assert results(tmp_path / "tworoom") == before  # nothing finished was rewritten
    log = [
        json.loads(x) for x in (tmp_path / "tworoom" / "suite_log.jsonl").read_text().splitlines()
    ]
    assert [r["action"] for r in log] == ["run"] * 6 + ["skip"] * 6
    assert (
        json.loads((tmp_path / "suite.json").read_text())["rows"][0]["planners"]
        == (row["planners"])
    )


def load_suite():
    return load_benchmark("bench_suite")


def test_a_bad_env_name_is_one_line() -> None:
    r = run_suite("--envs", "tworoom,nowhere")
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "unknown env 'nowhere'" in r.stderr


def test_bad_numbers_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    suite = load_suite()
    for args, words in (
        (["--steps", "0"], "--steps"),
        (["--pairs", "x"], "--pairs"),
        (["--minutes", "-1"], "--minutes"),
        (["--samples", "10"], "--elites (30) must be <= --samples (10)"),
    ):
        with pytest.raises(SystemExit) as e:
            suite.main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and words in err, (args, err)


def test_collect_counts_as_done_only_at_the_episodes_wanted(tmp_path: Path) -> None:
    # Without --episodes the suite wants the env's recipe (Reacher 1,000): a complete set of the
    # old default 100 is not its headline data and must be grown, not skipped.
    suite = load_suite()
    (tmp_path / "manifest.json").write_text(json.dumps({"complete": True, "episodes": 100}))
    assert suite.collect_done(tmp_path, {"episodes": None}, "reacher") is None
    assert suite.collect_done(tmp_path, {"episodes": 100}, "reacher") is not None
    (tmp_path / "manifest.json").write_text(json.dumps({"complete": True, "episodes": 1000}))
    assert suite.collect_done(tmp_path, {"episodes": None}, "reacher") is not None
    (tmp_path / "manifest.json").write_text(json.dumps({"complete": False, "episodes": 1000}))
    assert suite.collect_done(tmp_path, {"episodes": None}, "reacher") is None
