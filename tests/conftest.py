"""Settings shared by every test: quiet, offline CDK synthesis."""

import os

# jsii prints a banner per synth on Node 20 and the CDK may try to phone home: neither helps a test.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_DEPRECATED", "quiet")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
