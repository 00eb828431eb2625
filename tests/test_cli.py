"""The real ``reverie`` command: listing, collecting, inspecting, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reverie.cli import COMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reverie.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_collect_then_inspect(tmp_path: Path) -> None:
    out = tmp_path / "d"
    r = run_cli(
        "collect",
        "--env",
        "tworoom",
        "--episodes",
        "4",
        "--episode-steps",
        "10",
        "--out",
        str(out),
        "--workers",
        "2",
        "--shard-episodes",
        "2",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["episodes"] == 4
    assert "ep/s" not in r.stderr  # no progress bar
    r = run_cli("data", "inspect", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["checksums"] == "ok" and report["frames"] == 44
    assert (out / "contact_sheet.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["collect", "--env", "mars"], "unknown environment 'mars'"),
        (["collect", "--episodes", "many"], "invalid int value"),
        (["data", "inspect", "/nonexistent/dir"], "not found"),
        (["teleport"], "unknown command"),
        (["sysid", "--env", "tworoom", "--shift", "wind=3"], "unknown factor 'wind'"),
        (["sysid", "--env", "tworoom", "--shift", "visual"], "changes no physics factor"),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str) -> None:
    r = run_cli(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_envs_lists_every_env(capsys: pytest.CaptureFixture) -> None:
    from reverie.envs import ENV_NAMES

    assert main(["envs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(ENV_NAMES)
    assert all(r["success"] and r["physics_factors"] for r in rows)


@pytest.mark.parametrize(
    "command", [[c] for c in sorted(COMMANDS)] + [["physics", "generate"], ["physics", "eval"]]
)
def test_every_command_has_working_help(command: list[str], capsys: pytest.CaptureFixture) -> None:
    # argparse %-formats help text: one stray "%" in a field docstring used to crash --help.
    try:
        code = main([*command, "--help"])
    except SystemExit as exit_:
        code = exit_.code
    assert code in (0, None)
    assert "usage" in capsys.readouterr().out


def test_sysid_recovers_gain_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "sysid.json"
    args = ["--env", "tworoom", "--shift", "gain=1.4", "--episodes", "2", "--episode-steps", "20"]
    r = run_cli("sysid", *args, "--candidates", "12", "--passes", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    gain = json.loads(out.read_text())["factors"]["gain"]
    assert gain["true"] == 1.4 and gain["state"]["abs_error"] < 0.1
