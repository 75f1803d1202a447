"""The four stacks of an environment."""
