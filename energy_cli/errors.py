"""The one exception a command raises for a problem the user can fix."""

from __future__ import annotations


class CliError(Exception):
    """Printed as one line (`error: ...`) with exit status 1, never as a traceback."""
