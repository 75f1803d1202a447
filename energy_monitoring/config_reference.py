"""Prints the reference tables of the docs from the code that defines them.

python -m energy_monitoring.config_reference              # docs/configuration.md's settings
python -m energy_monitoring.config_reference --variables  # docs/contract.md's variables
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from typing import Any

from annotated_types import Ge, Le
from energy_runtime import contract
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


def variables_markdown() -> str:
    """The functions' environment variables, as energy_runtime.contract declares them."""
    lines = [
        "| variable | function | type / limits | default | set from | meaning |",
        "|---|---|---|---|---|---|",
    ]
    data_fields = set(EnvironmentConfig.model_fields["data"].annotation.model_fields)  # type: ignore[union-attr]
    for variable in contract.VARIABLES:
        functions = " and ".join(variable.functions)
        kind = variable.kind.__name__
        if variable.choices:
            kind += " in " + ", ".join(str(choice) for choice in variable.choices)
        elif variable.minimum is not None and variable.maximum is not None:
            kind += f" {variable.minimum}..{variable.maximum}"
        default = (
            "—" if variable.default is None else f"`{contract.format_value(variable.default)}`"
        )
        setting = variable.name.lower()
        if setting in data_fields:
            source = f"`data.{setting}`"
        elif variable is contract.LOG_LEVEL:
            source = "`functions.log_level`"
        elif variable.default is None and variable not in contract.POWERTOOLS_VARIABLES:
            source = "the stack (a resource's name)"
        else:
            source = "the contract"
        lines.append(
            f"| `{variable.name}` | {functions} | {kind} | {default} | {source} | "
            f"{variable.description} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(variables_markdown() if "--variables" in sys.argv[1:] else markdown(), end="")
