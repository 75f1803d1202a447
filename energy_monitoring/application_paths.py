"""Paths inside the repository that synthesis reads."""

from __future__ import annotations

from pathlib import Path
from typing import Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
RUNTIME_DIR: Final = PROJECT_ROOT / "runtime"
CDK_JSON: Final = PROJECT_ROOT / "cdk.json"
