"""Simulated apartment meters publishing over MQTT/TLS, with their ground truth."""
