"""The `energy-monitoring` command: its groups, and one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys

import typer

from energy_cli.commands import devices, local, quicksight
from energy_cli.commands.cost import cost
from energy_cli.commands.outputs import outputs
from energy_cli.commands.query import query
from energy_cli.commands.replay import replay
from energy_cli.commands.simulate import simulate
from energy_cli.errors import CliError

DEBUG_VARIABLE = "ENERGY_MONITORING_DEBUG"  # set to 1 for the traceback of an unexpected error

app = typer.Typer(
    name="energy-monitoring",
    help="Operate the apartment energy monitoring pipeline: stack outputs, meters, "
    "the meter simulator, the local pipeline and the cost model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(outputs)
app.add_typer(devices.app, name="devices")
app.command()(simulate)
app.add_typer(local.app, name="local")
app.command()(cost)
app.command()(replay)
app.command()(query)
app.add_typer(quicksight.app, name="quicksight")


def _fail(message: str) -> int:
    from energy_cli.console import one_line

    print(f"error: {one_line(message)}", file=sys.stderr)
    return 1


def run(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (0, 1 for an error, 2 for a usage mistake).

    Typer reports usage mistakes itself (standalone mode, which ends in SystemExit); what a
    command raises is turned into one line here."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="energy-monitoring", standalone_mode=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except CliError as error:
        return _fail(str(error))
    except Exception as error:
        from energy_cli.aws import describe

        reason = describe(error)
        if reason is not None:
            return _fail(reason)
        if os.environ.get(DEBUG_VARIABLE):
            raise
        return _fail(
            f"unexpected {type(error).__name__}: {error} ({DEBUG_VARIABLE}=1 for the traceback)"
        )
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
