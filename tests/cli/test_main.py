"""The command line's conventions: --help everywhere, usage errors, light start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [
    [],
    ["outputs"],
    ["devices"],
    ["devices", "register"],
    ["devices", "rotate"],
    ["devices", "revoke"],
    ["devices", "list"],
    ["simulate"],
    ["local"],
    ["local", "up"],
    ["local", "down"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(cli: Any, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0
    assert "Usage: energy-monitoring" in result.out


def test_the_demo_passes_its_options_through(cli: Any) -> None:
    result = cli("local", "demo", "--help")  # the demo's own options
    assert result.code == 0
    assert "usage: energy-monitoring local demo" in result.out and "--apartments" in result.out


def test_a_usage_mistake_exits_2_with_click_s_message(cli: Any) -> None:
    result = cli("devices", "register", "--out", "x")
    assert result.code == 2 and "Missing option '--env'" in result.err


def test_register_wants_one_meter_or_a_csv(cli: Any, tmp_path: Path) -> None:
    result = cli("devices", "register", "--env", "dev", "--out", tmp_path)
    assert result.code == 1
    assert result.err == "error: give either --thing (with --building and --apartment) or --csv\n"


def test_help_loads_neither_boto3_nor_the_cdk() -> None:
    # `--help` and every AWS command start fast: heavy imports wait for the command.
    probe = (
        "import sys; from energy_cli.main import run; code = run(['--help']); "
        "print(code, *[m in sys.modules for m in ('boto3', 'aws_cdk', 'devkit.runner')])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])},
        timeout=60,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "0 False False False"


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "energy-monitoring"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "devices" in done.stdout
