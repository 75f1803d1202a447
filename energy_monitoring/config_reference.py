"""Prints the settings reference table of docs/configuration.md from the config module.

python -m energy_monitoring.config_reference
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from energy_monitoring.config import DEFAULTS, EnvironmentConfig


def rows() -> Iterator[tuple[str, str, str, str]]:
    """(setting, type and allowed values, default, meaning) for every setting."""
    yield from _rows(EnvironmentConfig, DEFAULTS, prefix="")


def _rows(
    cls: type, defaults: Mapping[str, Any], *, prefix: str
) -> Iterator[tuple[str, str, str, str]]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in ("name", "prefix"):  # not settings: the key and the command line
            continue
        hint = hints[field.name]
        path = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(hint):
            yield from _rows(hint, defaults.get(field.name, {}), prefix=f"{path}.")  # type: ignore[arg-type]
            continue
        default = defaults.get(field.name, "(required)")
        yield path, _describe(hint, field.metadata), _format(default), field.metadata["doc"]


def _describe(hint: Any, meta: Mapping[str, Any]) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " / ".join(f"`{value}`" for value in typing.get_args(hint))
    names = [
        "null" if option is type(None) else option.__name__
        for option in (typing.get_args(hint) or (hint,))
    ]
    text = " or ".join(names)
    if meta.get("choices"):
        text += " in " + ", ".join(str(choice) for choice in meta["choices"])
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and high is not None:
        text += f" {low}..{high}"
    elif low is not None:
        text += f" >= {low}"
    return text


def _format(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != "(required)" else "required"


def markdown() -> str:
    lines = ["| setting | type / allowed | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{path}` | {kind} | {default} | {doc} |" for path, kind, default, doc in rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
