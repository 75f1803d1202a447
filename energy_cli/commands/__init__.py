"""One module per command group; each keeps its heavy imports inside its functions."""
