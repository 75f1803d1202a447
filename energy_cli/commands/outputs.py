"""`energy-monitoring outputs`: every stack output of an environment."""

from __future__ import annotations

from energy_cli import console
from energy_cli.options import Env, Json, Outputs, Prefix, environment


def outputs(env: Env, prefix: Prefix = "", outputs: Outputs = None, json: Json = False) -> None:
    """Show the environment's stack outputs (what QuickSight, installers and scripts need)."""
    found, _clients = environment(env, prefix, outputs)
    if json:
        console.print_json(found.stacks)
        return
    rows = [
        (stack, key, value)
        for stack, values in sorted(found.stacks.items())
        for key, value in sorted(values.items())
        if not key.startswith("ExportsOutput")  # CDK's cross-stack plumbing
    ]
    console.table(f"{found.stage} ({found.source})", ("stack", "output", "value"), rows)
