"""Every alarm action and every notification can reach its topic, as AWS evaluates it.

A topic policy replaces SNS's default policy, and CloudWatch publishes alarm actions as
the service principal `cloudwatch.amazonaws.com`: unless the topic policy allows it and the
topic's KMS key lets it encrypt, every alarm fails to notify, silently. These tests walk
every alarm action of every environment to its topic, its topic policy and its key policy
and evaluate them (tests/infra/iam_evaluation.py); likewise Device Defender's role and the
processor publishing alerts.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.iam_evaluation import Deployment, Resource, can_publish
from infra.synthesis import SynthesizedApp

ENVIRONMENTS = ("dev", "staging", "prod")
# CodeDeploy watches these (they roll a canary back); they page nobody by design.
ALARMS_WITHOUT_ACTIONS = ("BatchingAliasErrors", "ProcessorAliasErrors")
# The ops alarms of an environment today; more may come, none may go missing.
MIN_ALARMS_WITH_ACTIONS = 17


def alarm_context(deployment: Deployment, alarm: Resource) -> dict[str, str]:
    """What CloudWatch's request carries when it runs the alarm's actions."""
    return {
        "aws:SourceAccount": deployment.account,
        "aws:SourceArn": deployment.resolve(alarm.stack, {"Fn::GetAtt": [alarm.logical_id, "Arn"]}),
        "aws:SecureTransport": "true",
    }


def alarm_actions(alarm: Resource) -> list[Any]:
    return [
        *alarm.properties.get("AlarmActions", []),
        *alarm.properties.get("OKActions", []),
        *alarm.properties.get("InsufficientDataActions", []),
    ]


def walk_alarm_actions(deployment: Deployment) -> tuple[list[str], list[str], list[str]]:
    """(alarms walked, alarms without actions, problems found)."""
    walked, silent, problems = [], [], []
    for alarm in deployment.resources("AWS::CloudWatch::Alarm"):
        actions = alarm_actions(alarm)
        if not actions:
            silent.append(alarm.logical_id)
            continue
        for action in actions:
            topic_arn = deployment.resolve(alarm.stack, action)
            assert str(topic_arn).startswith("arn:aws:sns:"), (alarm.logical_id, topic_arn)
            found = can_publish(
                deployment,
                principal="cloudwatch.amazonaws.com",
                topic_arn=topic_arn,
                context=alarm_context(deployment, alarm),
            )
            problems += [f"{alarm.logical_id}: {problem}" for problem in found]
        walked.append(alarm.logical_id)
    return walked, silent, problems


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_alarm_action_reaches_its_topic(
    synthesized: SynthesizedApp, environment: str
) -> None:
    walked, silent, problems = walk_alarm_actions(synthesized.deployment(environment))

    assert problems == []
    # Only the canary rollback alarms page nobody, and the walk saw every other alarm.
    assert sorted(lid.rstrip("0123456789ABCDEF") for lid in silent) == sorted(
        ALARMS_WITHOUT_ACTIONS
    )
    assert len(walked) >= MIN_ALARMS_WITH_ACTIONS
    assert len(walked) + len(silent) == len(
        synthesized.deployment(environment).resources("AWS::CloudWatch::Alarm")
    )


def ops_stack(deployment: Deployment) -> str:
    (stack,) = [name for name in deployment.templates if name.endswith("-Observability")]
    return stack


def without(deployment: Deployment, resource_type: str, keep: Any) -> Deployment:
    """A copy of the deployment with some statements of one kind of policy removed."""
    templates = copy.deepcopy(dict(deployment.templates))
    for template in templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] != resource_type:
                continue
            document_key = "KeyPolicy" if resource_type == "AWS::KMS::Key" else "PolicyDocument"
            document = resource["Properties"][document_key]
            document["Statement"] = [s for s in document["Statement"] if keep(s)]
    return Deployment(templates, account=deployment.account, region=deployment.region)


def test_the_walk_fails_without_the_topic_policys_allow(synthesized: SynthesizedApp) -> None:
    # The defect this guards against: a TLS-only topic policy allows nobody.
    deployment = without(
        synthesized.deployment("prod"),
        "AWS::SNS::TopicPolicy",
        keep=lambda statement: statement["Effect"] == "Deny",
    )
    walked, _silent, problems = walk_alarm_actions(deployment)

    assert len(problems) == 2 * len(walked)  # every alarm action and every OK action
    assert all("no resource-based policy allows the service principal" in p for p in problems)


def test_the_walk_fails_without_the_keys_grant_to_cloudwatch(synthesized: SynthesizedApp) -> None:
    deployment = without(
        synthesized.deployment("prod"),
        "AWS::KMS::Key",
        keep=lambda statement: (
            "Service" not in statement.get("Principal", {})
            or statement["Principal"]["Service"] != "cloudwatch.amazonaws.com"
        ),
    )
    _walked, _silent, problems = walk_alarm_actions(deployment)

    assert problems and all("kms:" in problem for problem in problems)


def test_another_environments_alarms_cannot_publish_to_this_ops_topic(
    synthesized: SynthesizedApp,
) -> None:
    deployment = synthesized.deployment("prod")
    stack = ops_stack(deployment)
    (topic,) = [t for t in deployment.resources("AWS::SNS::Topic") if t.stack == stack]
    topic_arn = deployment.resolve(stack, {"Fn::GetAtt": [topic.logical_id, "Arn"]})
    account = deployment.account
    foreign = f"arn:aws:cloudwatch:eu-central-1:{account}:alarm:energy-staging-BatchingErrors"
    context = {
        "aws:SourceAccount": account,
        "aws:SourceArn": foreign,
        "aws:SecureTransport": "true",
    }

    problems = can_publish(
        deployment, principal="cloudwatch.amazonaws.com", topic_arn=topic_arn, context=context
    )
    assert any("sns:Publish" in problem for problem in problems)
    plain = {**context, "aws:SourceArn": foreign.replace("energy-staging", "energy-prod"),
             "aws:SecureTransport": "false"}  # fmt: skip
    assert any("explicit deny" in problem for problem in can_publish(
        deployment, principal="cloudwatch.amazonaws.com", topic_arn=topic_arn, context=plain
    ))  # fmt: skip


@pytest.mark.parametrize("environment", ("staging", "prod"))
def test_device_defender_findings_reach_the_ops_topic(
    synthesized: SynthesizedApp, environment: str
) -> None:
    deployment = synthesized.deployment(environment)
    (audit,) = deployment.resources("AWS::IoT::AccountAuditConfiguration")
    target = audit.properties["AuditNotificationTargetConfigurations"]["Sns"]
    role_arn = deployment.resolve(audit.stack, target["RoleArn"])
    topic_arn = deployment.resolve(audit.stack, target["TargetArn"])

    assert target["Enabled"] is True
    assert (
        can_publish(
            deployment,
            principal=role_arn,
            topic_arn=topic_arn,
            context={"aws:SourceAccount": deployment.account, "aws:SecureTransport": "true"},
        )
        == []
    )


def test_detect_violations_reach_the_ops_topic(variant: SynthesizedApp) -> None:
    deployment = variant.deployment("dev")
    profiles = deployment.resources("AWS::IoT::SecurityProfile")
    assert len(profiles) == 2
    for profile in profiles:
        target = profile.properties["AlertTargets"]["SNS"]
        assert (
            can_publish(
                deployment,
                principal=deployment.resolve(profile.stack, target["RoleArn"]),
                topic_arn=deployment.resolve(profile.stack, target["AlertTargetArn"]),
                context={"aws:SourceAccount": deployment.account, "aws:SecureTransport": "true"},
            )
            == []
        )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_processor_can_publish_alerts(synthesized: SynthesizedApp, environment: str) -> None:
    deployment = synthesized.deployment(environment)
    (processor,) = [
        f for f in deployment.resources("AWS::Lambda::Function")
        if f.properties.get("Handler") == "energy_runtime.processor.handler"
    ]  # fmt: skip
    variables = processor.properties["Environment"]["Variables"]
    topic_arn = deployment.resolve(processor.stack, variables["ALERT_TOPIC_ARN"])
    role_arn = deployment.resolve(processor.stack, processor.properties["Role"])

    assert (
        can_publish(
            deployment,
            principal=role_arn,
            topic_arn=topic_arn,
            context={"aws:SourceAccount": deployment.account, "aws:SecureTransport": "true"},
        )
        == []
    )
    # And the batching function, which has no business there, cannot.
    (batching,) = [
        f for f in deployment.resources("AWS::Lambda::Function")
        if f.properties.get("Handler") == "energy_runtime.batching.handler"
    ]  # fmt: skip
    assert can_publish(
        deployment,
        principal=deployment.resolve(batching.stack, batching.properties["Role"]),
        topic_arn=topic_arn,
        context={"aws:SourceAccount": deployment.account, "aws:SecureTransport": "true"},
    )
