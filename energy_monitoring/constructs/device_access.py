"""The IoT policy every meter certificate gets, the meters' thing type and thing group.

CloudFormation names the policy and the thing type (installers read the names from the
stack outputs). The thing group is named `<stage>-meters`: the Device Defender profiles
of the Observability stack target it by that name, with no export to lock it, and
installers add meters to it by name.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iot as iot
from constructs import Construct

from energy_monitoring.config import EnvironmentConfig

THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"


def device_topics(*, topic_root: str, rule_name: str, basic_ingest: bool) -> list[str]:
    """The only topics a meter may publish to: its own, and Basic Ingest's if enabled."""
    topics = [f"{topic_root}/{THING_NAME_VARIABLE}"]
    if basic_ingest:
        topics.append(f"$aws/rules/{rule_name}/{topic_root}/{THING_NAME_VARIABLE}")
    return topics


class DeviceAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        def iot_arn(resource: str) -> str:
            return f"arn:{stack.partition}:iot:{stack.region}:{stack.account}:{resource}"

        topics = device_topics(
            topic_root=config.topic_root,
            rule_name=config.iot_rule_name,
            basic_ingest=config.ingest.basic_ingest,
        )
        document: dict[str, Any] = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # A certificate connects only as the thing it is attached to.
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": iot_arn(f"client/{THING_NAME_VARIABLE}"),
                    "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": [iot_arn(f"topic/{topic}") for topic in topics],
                },
            ],
        }
        self.policy = iot.CfnPolicy(self, "MeterPolicy", policy_document=document)
        self.thing_type = iot.CfnThingType(
            self,
            "MeterType",
            thing_type_properties=iot.CfnThingType.ThingTypePropertiesProperty(
                thing_type_description="Apartment energy meter publishing readings over MQTT",
                searchable_attributes=["building", "apartment"],
            ),
        )
        self.thing_group_name = f"{config.resource_prefix}-meters"
        self.thing_group = iot.CfnThingGroup(
            self,
            "Meters",
            thing_group_name=self.thing_group_name,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description=f"Energy meters of the {config.name} environment"
            ),
        )
