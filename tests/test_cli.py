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
        (["physics"], "expected an action"),
        (["physics", "telepathy"], "expected an action"),
        (["physics", "generate", "--out", "x", "--pairs-per-category", "0"], "pairs-per-category"),
        (["physics", "eval", "--checkpoint", "/nonexistent", "--clips", "/no"], "not found"),
        (["data"], "required"),
        (["data", "merge", "/tmp/never-out", "/nonexistent/dir"], "not found"),
        (["report", "/nonexistent/run"], "not found"),
        (["report"], "required: run"),
        (["eval", "--env", "tworoom", "--planner", "random", "--seed", "-1"], "--seed must be"),
        (["eval", "--env", "tworoom", "--planner", "oracle", "--elites", "400"], "--elites"),
        (["shift", "--checkpoint", "x", "--env", "tworoom", "--seed", "1000"], "--seed must be"),
        (["plan", "--checkpoint", "x", "--horizon", "0"], "--horizon must be"),
        (["sysid", "--env", "tworoom", "--seed", "2000"], "--seed must be in [0, 999]"),
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


ENTRY_POINTS = [
    "reverie",
    "reverie.cli",
    "reverie.physics.passive",
    "reverie.train",
    "reverie.models.decoder",
    "reverie.physics.pixel_baseline",
    "reverie.viewer.server",
]


def test_the_entry_point_list_is_complete() -> None:
    """Every module with a ``__main__`` block is in ENTRY_POINTS (so each is tested below)."""
    root = Path(__file__).parents[1] / "src"
    found = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__main__")
        for p in root.rglob("*.py")
        if '__name__ == "__main__"' in p.read_text()
    }
    assert found <= set(ENTRY_POINTS), found - set(ENTRY_POINTS)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_python_m_entry_point_speaks_the_same_grammar(module: str) -> None:
    # python -m reverie.physics.passive used to read sys.argv by hand (a usage string, exit 1).
    r = subprocess.run(
        [sys.executable, "-m", module, "--bad-flag"], capture_output=True, text=True, timeout=120
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("reverie"), r.stderr


@pytest.mark.parametrize(
    "command, cls",
    [
        ("eval", "reverie.evaluate:EvalConfig"),
        ("plan", "reverie.plan:PlanConfig"),
        ("shift", "reverie.simreal.shifts:ShiftConfig"),
    ],
)
def test_planner_flags_mean_the_same_in_every_planning_command(command: str, cls: str) -> None:
    import importlib

    from reverie.cliargs import parse_config
    from reverie.planning.options import PlannerOptions

    module, name = cls.split(":")
    config = getattr(importlib.import_module(module), name)
    argv = ["--checkpoint", "x", "--samples", "7", "--iterations", "2", "--elites", "3"]
    cfg = parse_config(config, [*argv, "--horizon", "4", "--threads", "1"], f"reverie {command}")
    assert cfg.planning == PlannerOptions(samples=7, iterations=2, elites=3, horizon=4)
    assert cfg.seed == 0 and cfg.threads == 1


@pytest.mark.parametrize(
    "command", [["collect"], ["eval"], ["shift"], ["demo"], ["physics", "generate"]]
)
def test_long_commands_can_hide_progress(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "--no-progress" in capsys.readouterr().out
