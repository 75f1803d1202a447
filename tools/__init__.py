"""Developer tools of the project (benchmark)."""
