"""`energy-monitoring replay`: re-drive dead letters, stream failures or quarantined readings."""

from __future__ import annotations

from typing import Annotated

import typer

from energy_cli import console
from energy_cli.errors import CliError
from energy_cli.options import Env, Json, Outputs, Prefix, environment, time_range


def replay(
    env: Env,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="The processor's dead-letter queue.")
    ] = False,
    stream_failures: Annotated[
        bool,
        typer.Option(
            "--stream-failures", help="The batching function's on-failure records (shard ranges)."
        ),
    ] = False,
    quarantine: Annotated[
        bool,
        typer.Option("--quarantine", help="Quarantined readings received in --from..--to."),
    ] = False,
    from_: Annotated[
        str | None, typer.Option("--from", help="With --quarantine: ISO 8601 start (UTC).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="With --quarantine: ISO 8601 end (UTC).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be replayed.")
    ] = False,
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
) -> None:
    """Re-drive what the pipeline could not process, through the handlers' own code with
    the functions' settings (idempotent: a second run changes nothing).

    Exit status 1 if anything still fails or a stream range has expired.
    """
    from energy_cli import recovery

    if [dead_letters, stream_failures, quarantine].count(True) != 1:
        raise CliError("give one of --dead-letters, --stream-failures, --quarantine")
    if quarantine and (from_ is None or to is None):
        raise CliError("--quarantine needs --from and --to")
    if not quarantine and (from_ is not None or to is not None):
        raise CliError("--from and --to go with --quarantine")
    found, clients = environment(env, prefix, outputs)
    with console.progress(quiet=json) as bar:
        task = bar.add_task("replaying", total=None)

        def advance(count: int) -> None:
            bar.advance(task, count)

        if dead_letters:
            outcome = recovery.dead_letters(found, clients, dry_run=dry_run, progress=advance)
        elif stream_failures:
            outcome = recovery.stream_failures(found, clients, dry_run=dry_run, progress=advance)
        else:
            start, end = time_range(from_ or "", to or "")
            outcome = recovery.quarantine(
                found, clients, start=start, end=end, dry_run=dry_run, progress=advance
            )
    if json:
        console.print_json(outcome.as_json())
    else:
        console.table(
            f"replay {outcome.source} ({found.stage}){' — dry run' if dry_run else ''}",
            ("found", "replayed", "applied", "still failing", "expired", "skipped"),
            [(outcome.found, outcome.replayed, outcome.applied, outcome.still_failing,
              outcome.expired, outcome.skipped)],
        )  # fmt: skip
        for note in outcome.notes:
            console.note(note)
    if outcome.still_failing or outcome.expired:
        raise typer.Exit(1)
