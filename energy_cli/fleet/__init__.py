"""Meters in AWS IoT: the roster an installer brings, their certificates and folders."""
