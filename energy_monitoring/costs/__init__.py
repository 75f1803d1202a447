"""What an environment costs to run, from its settings and a price list (plain Python: the
cost command and the local demo use it without the CDK)."""
