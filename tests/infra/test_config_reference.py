"""docs/configuration.md lists every setting as the config models define it."""

from __future__ import annotations

from pydantic import BaseModel

from energy_monitoring.application_paths import PROJECT_ROOT
from energy_monitoring.config import NOT_SETTINGS, EnvironmentConfig
from energy_monitoring.config_reference import markdown, rows


def test_docs_carry_the_generated_table() -> None:
    docs = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert markdown() in docs, "regenerate: python -m energy_monitoring.config_reference"


def test_every_setting_has_a_row_with_a_meaning() -> None:
    expected = set()
    for name, field in EnvironmentConfig.model_fields.items():
        hint = field.annotation
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            expected |= {f"{name}.{inner}" for inner in hint.model_fields}
        elif name not in NOT_SETTINGS:
            expected.add(name)

    assert {path for path, _kind, _default, _doc in rows()} == expected
    assert len(expected) > 50
    assert all(doc for _path, _kind, _default, doc in rows())
