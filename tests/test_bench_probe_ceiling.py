"""benchmarks/bench_probe_ceiling.py: the supervised ceiling runs and reads what it should."""

from __future__ import annotations

from pathlib import Path

import pytest
from _bench import load_benchmark


def load():
    return load_benchmark("bench_probe_ceiling")


def test_ceiling_prints_held_out_r2_per_pose_variable(
    tworoom_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load().main(["--data", str(tworoom_data), "--preset", "tiny", "--steps", "150"])
    out = capsys.readouterr().out
    rows = {
        r.split("|")[1].strip(): r
        for r in out.splitlines()
        if r.startswith("| ") and "---" not in r
    }
    assert set(rows) == {"variable", "x", "y"}  # velocities are not in one frame
    # Two-Room's position is plain to see: the supervised encoder must recover it.
    assert float(rows["x"].split("|")[2]) > 0.5, out


def test_missing_dataset_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not found|no such|does not exist|manifest"):
        load().main(["--data", str(tmp_path / "nowhere")])
