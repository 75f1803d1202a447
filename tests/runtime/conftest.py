"""Fixtures for the runtime tests (helpers live in runtime_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from runtime_fixtures import Cloud, cloud_context


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    yield from cloud_context(monkeypatch)
