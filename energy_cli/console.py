"""Output for people (rich tables, progress on stderr) and for scripts (`--json` on stdout)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


# Tables piped to a file or another program are not folded to the 80 columns rich assumes.
PIPED_WIDTH = 200


def stdout() -> Console:
    from rich.console import Console

    console = Console(file=sys.stdout, soft_wrap=False)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


def stderr() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, soft_wrap=True)


def print_json(value: Any) -> None:
    """One JSON document on stdout, nothing else: what a script parses."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    shown = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*("" if value is None else str(value) for value in row))
    stdout().print(shown)


def note(message: str) -> None:
    """A line for people, on stderr (stdout stays one JSON document under --json)."""
    stderr().print(message, highlight=False)


def progress(*, quiet: bool = False) -> Progress:
    """A progress bar on stderr; hidden under --json and when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = stderr()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=False,
    )


@contextlib.contextmanager
def status(message: str, *, quiet: bool = False, log: bool = False) -> Iterator[None]:
    """A spinner on stderr while something of unknown length runs (hidden like progress);
    with `log`, where stderr is not a terminal (a CI log), the message as a line instead."""
    console = stderr()
    if quiet or not console.is_terminal:
        if log and not quiet:
            console.print(message, highlight=False)
        yield
        return
    with console.status(message):
        yield


def one_line(message: str) -> str:
    """An error message as the one line the command prints."""
    return " ".join(message.split())
