"""Prints the settings reference table of docs/configuration.md from the config models.

python -m energy_monitoring.config_reference
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from energy_monitoring.config import NOT_SETTINGS, EnvironmentConfig, OneOf


def rows() -> Iterator[tuple[str, str, str, str]]:
    """(setting, type and allowed values, default, meaning) for every setting."""
    yield from _rows(EnvironmentConfig, prefix="")


def _rows(model: type[BaseModel], *, prefix: str) -> Iterator[tuple[str, str, str, str]]:
    for name, field in model.model_fields.items():
        if not prefix and name in NOT_SETTINGS:
            continue
        path = f"{prefix}{name}"
        hint = field.annotation
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            yield from _rows(hint, prefix=f"{path}.")
            continue
        yield path, _describe(hint, field), _format(field), field.description or ""


def _describe(hint: Any, field: FieldInfo) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return " / ".join(f"`{value}`" for value in typing.get_args(hint))
    names = [
        "null" if option is type(None) else option.__name__
        for option in (typing.get_args(hint) or (hint,))
    ]
    text = " or ".join(names)
    choices = [
        m.func.choices
        for m in field.metadata
        if isinstance(m, AfterValidator) and isinstance(m.func, OneOf)
    ]
    if choices:
        text += " in " + ", ".join(str(choice) for choice in choices[0])
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if low is not None and high is not None:
        text += f" {low}..{high}"
    elif low is not None:
        text += f" >= {low}"
    return text


def _format(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def markdown() -> str:
    lines = ["| setting | type / allowed | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{path}` | {kind} | {default} | {doc} |" for path, kind, default, doc in rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
