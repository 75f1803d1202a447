"""Settings shared by every test: quiet, offline CDK synthesis."""

import os

# jsii prints a banner per synth on Node 20 and the CDK may try to phone home: neither helps a test.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_DEPRECATED", "quiet")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

# Property tests are seeded in `make test`, so a run is repeatable and CI cannot fail on an
# example it never saw before; HYPOTHESIS_PROFILE=explore searches afresh (and longer).
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
