#!/usr/bin/env python3
"""Entry point for the CDK CLI (`cdk synth`, `cdk diff`, `cdk deploy`)."""

from energy_monitoring.application import build_app

build_app().synth()
