"""docs/configuration.md lists every setting as the config module defines it."""

from __future__ import annotations

import dataclasses
import typing

from energy_monitoring.application_paths import PROJECT_ROOT
from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.config_reference import markdown, rows


def test_docs_carry_the_generated_table() -> None:
    docs = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert markdown() in docs, "regenerate: python -m energy_monitoring.config_reference"


def test_every_setting_has_a_row_with_a_meaning() -> None:
    expected = set()
    for name, hint in typing.get_type_hints(EnvironmentConfig).items():
        if dataclasses.is_dataclass(hint):
            expected |= {f"{name}.{field.name}" for field in dataclasses.fields(hint)}
        elif name not in ("name", "prefix"):  # the key and the command-line prefix
            expected.add(name)

    assert {path for path, _kind, _default, _doc in rows()} == expected
    assert all(doc for _path, _kind, _default, doc in rows())
