"""Settings shared by every test (quiet, offline CDK synthesis; seeded property tests) and
the one synthesis of the whole app that every test needing templates shares."""

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from infra.synthesis import SynthesizedApp, synthesize_app

# jsii prints a banner per synth on Node 20 and the CDK may try to phone home: neither helps a test.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_DEPRECATED", "quiet")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

# Property tests are seeded in `make test`, so a run is repeatable and CI cannot fail on an
# example it never saw before; HYPOTHESIS_PROFILE=explore searches afresh (and longer). How
# fast inputs are drawn is no property of the code: on a shared 2-core machine a busy
# neighbour made the too-slow health check fail a test whose every example passed.
settings.register_profile(
    "repeatable",
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", derandomize=False, max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedApp]:
    """The whole app, synthesized once: the infrastructure tests read its templates and
    the command line's `local up` starts the local pipeline from it."""
    yield synthesize_app(tmp_path_factory.mktemp("cdk.out"))
