"""checkov on the synthesized templates of every environment: no finding but the ones
checkov.yaml accepts, each with its reason, and no accepted entry that is no longer needed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.synthesis import SynthesizedApp

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
ACCEPTED = REPO / "checkov.yaml"


def findings(outdir: Path) -> list[tuple[str, str, str]]:
    """(check id, logical id, template file) of every failed check."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup`"
    done = subprocess.run(
        [str(CHECKOV), "-d", str(outdir), "--framework", "cloudformation", "--quiet",
         "-o", "json", "--skip-download"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    reports: Any = json.loads(done.stdout or "[]")
    found = []
    for report in reports if isinstance(reports, list) else [reports]:
        assert report.get("summary", {}).get("parsing_errors", 0) == 0, report["summary"]
        for failure in report.get("results", {}).get("failed_checks", []):
            logical_id = failure["resource"].rsplit(".", 1)[-1]
            found.append((failure["check_id"], logical_id, failure["file_path"]))
    return found


def test_checkov_finds_nothing_that_is_not_accepted_with_a_reason(
    synthesized: SynthesizedApp, variant: SynthesizedApp
) -> None:
    accepted = yaml.safe_load(ACCEPTED.read_text())["accepted"]
    for entry in accepted:
        assert entry["reason"].strip() and entry["resources"], entry["check"]
    used: set[tuple[str, str]] = set()
    unexpected = []
    for outdir in (synthesized.outdir, variant.outdir):
        for check, logical_id, path in findings(Path(outdir)):
            matches = [
                (entry["check"], prefix)
                for entry in accepted
                if entry["check"] == check
                for prefix in entry["resources"]
                if logical_id.startswith(prefix)
            ]
            if matches:
                used.update(matches)
            else:
                unexpected.append((check, logical_id, path))
    assert unexpected == []
    stale = [
        (e["check"], p) for e in accepted for p in e["resources"] if (e["check"], p) not in used
    ]
    assert stale == [], "accepted in checkov.yaml but no longer found: remove them"
