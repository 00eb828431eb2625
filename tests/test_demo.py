"""The main job end to end, tiny: collect -> train -> eval (3 episodes) -> JSON and HTML report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reverie.demo import DemoConfig, format_summary, run_demo
from reverie.evaluate import EvalConfig, evaluate
from reverie.io import ReverieError


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=out, quick=True, episodes=24, steps=60, workers=1, threads=1)
    return out, run_demo(cfg, progress=False)


def test_quick_demo_writes_valid_json_and_report(demo: tuple[Path, dict]) -> None:
    out, summary = demo
    assert set(summary["results"]) == {"cem", "policy", "random", "oracle"}
    for planner, r in summary["results"].items():
        saved = json.loads((out / f"eval_{planner}.json").read_text())
        assert saved["episodes"] == r["episodes"] == 3
        assert 0.0 <= saved["success_rate"] <= 100.0
        assert saved["ci95"][0] <= saved["success_rate"] <= saved["ci95"][1]
        assert len(saved["records"]) == 3 and saved["seed_range"][0] >= 2_000_000_000
    assert summary["results"]["cem"]["plan_ms_median"] > 0
    assert json.loads((out / "demo.json").read_text())["total_seconds"] > 0
    html = (out / "report.html").read_text()
    assert "Closed-loop planning" in html and "<img" in html
    table = format_summary(summary)
    assert "world model + CEM" in table and "oracle" in table and "wall time" in table
    assert "policy (no search)" in table and summary["stage_seconds"]["policy"] > 0


def test_a_policy_for_other_weights_is_not_resumed(demo: tuple[Path, dict]) -> None:
    from reverie.checkpoint import read_meta
    from reverie.demo import _check_policy

    out, _ = demo
    _check_policy(out / "policy", read_meta(out))  # the demo's own policy: fine
    with pytest.raises(ReverieError, match="policy for other world-model weights"):
        _check_policy(out / "policy", {"files": {"model.safetensors": "0" * 64}})


def test_checkpoint_of_another_env_is_refused(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    with pytest.raises(ReverieError, match="trained on 'tworoom', not 'pusht'"):
        evaluate(EvalConfig(checkpoint=out, env="pusht", episodes=1), progress=False)
    r = subprocess.run(
        [sys.executable, "-m", "reverie.cli", "eval", "--checkpoint", str(out), "--env", "pusht"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "trained on 'tworoom'" in r.stderr
