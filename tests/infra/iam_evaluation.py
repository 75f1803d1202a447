"""Evaluates the synthesized policies the way AWS does, for the questions the tests ask.

`Deployment` resolves an environment's templates to concrete names and ARNs in a pretend
account and region (intrinsics, cross-stack imports, generated names), and `allowed`
answers "may this principal do this action on this resource, with this request context?"
from the policies AWS would consult:

- an explicit Deny in any of them wins;
- a service principal (for example `cloudwatch.amazonaws.com` publishing an alarm action)
  is allowed only by a resource policy that names it;
- a role of the same account is allowed by its identity policies or the resource policy;
  a KMS key policy must allow it too, directly or by delegating to the account's IAM
  policies (the `:root` principal).

It understands what the templates use (wildcards in actions and resources, Principal,
the String/Arn/Bool condition operators with IfExists, ForAnyValue over a multi-valued
key such as kms:ResourceAliases) and fails loudly on anything else
(NotAction, NotPrincipal, an unknown operator), so a new construct cannot slip through
as "allowed" by accident.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-central-1"
PARTITION = "aws"


class UnsupportedPolicy(AssertionError):
    """A policy element this evaluator does not model: extend it, do not ignore it."""


@dataclass(frozen=True)
class Resource:
    stack: str
    logical_id: str
    type: str
    properties: Mapping[str, Any]


@dataclass
class Deployment:
    """One environment's templates, resolved in a pretend account and region."""

    templates: Mapping[str, Mapping[str, Any]]  # stack name -> template
    account: str = ACCOUNT
    region: str = REGION
    regions: Mapping[str, str] = field(default_factory=dict)  # stacks in another region
    _exports: dict[str, tuple[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if name is not None:
                    self._exports[self.resolve(stack, name)] = (stack, output["Value"])

    # -- lookups -------------------------------------------------------------------------

    def resource(self, stack: str, logical_id: str) -> Resource:
        raw = self.templates[stack]["Resources"][logical_id]
        return Resource(stack, logical_id, raw["Type"], raw.get("Properties", {}))

    def resources(self, type_: str) -> list[Resource]:
        return [
            Resource(stack, logical_id, raw["Type"], raw.get("Properties", {}))
            for stack, template in self.templates.items()
            for logical_id, raw in template["Resources"].items()
            if raw["Type"] == type_
        ]

    def referenced(self, stack: str, value: Any) -> Resource:
        """The resource a Ref / Fn::GetAtt / Fn::ImportValue of one resource points at."""
        if isinstance(value, Mapping) and "Fn::ImportValue" in value:
            exporter, expression = self._exports[self.resolve(stack, value["Fn::ImportValue"])]
            return self.referenced(exporter, expression)
        if isinstance(value, Mapping) and "Ref" in value:
            return self.resource(stack, value["Ref"])
        if isinstance(value, Mapping) and "Fn::GetAtt" in value:
            return self.resource(stack, value["Fn::GetAtt"][0])
        raise UnsupportedPolicy(f"{stack}: {value!r} names no single resource")

    # -- intrinsics ----------------------------------------------------------------------

    def resolve(self, stack: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) != 1:
            return {key: self.resolve(stack, item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(stack, argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument
            return self._attribute(self.resource(stack, logical_id), attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(part) for part in self.resolve(stack, parts))
        if function == "Fn::ImportValue":
            exporter, expression = self._exports[self.resolve(stack, argument)]
            return self.resolve(exporter, expression)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(stack, items)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(stack, text)).split(separator)
        if function.startswith("Fn::"):
            raise UnsupportedPolicy(f"{stack}: intrinsic {function} is not modelled")
        return {function: self.resolve(stack, argument)}

    def _ref(self, stack: str, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region_of(stack),
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
        }
        if name in pseudo:
            return pseudo[name]
        resource = self.resource(stack, name)
        match resource.type:
            case "AWS::SNS::Topic" | "AWS::SQS::Queue":
                return self._attribute(resource, "Arn")
            case "AWS::KMS::Key":
                return self._key_id(resource)
            case "AWS::CloudWatch::Alarm":
                return self.physical_name(resource, "AlarmName")
        return self.physical_name(resource, None)

    def region_of(self, stack: str) -> str:
        return self.regions.get(stack, self.region)

    def _attribute(self, resource: Resource, attribute: str) -> str:
        name = self.physical_name(resource, None)
        region = self.region_of(resource.stack)
        arns = {
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{region}:{self.account}:{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{region}:{self.account}:{name}",
            "AWS::KMS::Key": (
                f"arn:{PARTITION}:kms:{region}:{self.account}:key/{self._key_id(resource)}"
            ),
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{self.account}:role/{name}",
            "AWS::S3::Bucket": (
                f"arn:{PARTITION}:s3:::{self.physical_name(resource, 'BucketName')}"
            ),
            "AWS::CloudWatch::Alarm": (
                f"arn:{PARTITION}:cloudwatch:{region}:{self.account}:alarm:"
                f"{self.physical_name(resource, 'AlarmName')}"
            ),
        }
        if attribute in ("Arn", "TopicArn") and resource.type in arns:
            return arns[resource.type]
        return f"{name}.{attribute}"

    def physical_name(self, resource: Resource, name_property: str | None) -> str:
        """The name CloudFormation would use: the property if set, else a generated one."""
        if name_property and name_property in resource.properties:
            return str(self.resolve(resource.stack, resource.properties[name_property]))
        return f"{resource.stack}-{resource.logical_id}-GENERATED"

    @staticmethod
    def _key_id(resource: Resource) -> str:
        return f"key-{resource.logical_id.lower()}"

    # -- policies ------------------------------------------------------------------------

    def topic_policies(self, topic_arn: str) -> list[list[dict[str, Any]]]:
        return self._resource_policies("AWS::SNS::TopicPolicy", "Topics", topic_arn)

    def key_policy(self, key_arn: str) -> list[dict[str, Any]]:
        for key in self.resources("AWS::KMS::Key"):
            if self._attribute(key, "Arn") == key_arn:
                document = self.resolve(key.stack, key.properties["KeyPolicy"])
                statements: list[dict[str, Any]] = document["Statement"]
                return statements
        raise AssertionError(f"no key {key_arn} in the templates")

    def identity_policies(self, role_arn: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = []
        for managed in self.resources("AWS::IAM::ManagedPolicy"):
            # Roles are named without their path (`service-role/...` is part of the ARN).
            roles = self.resolve(managed.stack, managed.properties.get("Roles", []))
            if any(role_arn.rsplit("/", 1)[-1] == role for role in roles):
                statements += self.resolve(managed.stack, managed.properties["PolicyDocument"])[
                    "Statement"
                ]
        for policy in self.resources("AWS::IAM::Policy"):
            roles = self.resolve(policy.stack, policy.properties.get("Roles", []))
            arns = {f"arn:{PARTITION}:iam::{self.account}:role/{role}" for role in roles}
            if role_arn in arns:
                statements += self.resolve(policy.stack, policy.properties["PolicyDocument"])[
                    "Statement"
                ]
        for role in self.resources("AWS::IAM::Role"):
            if self._attribute(role, "Arn") == role_arn:
                if role.properties.get("ManagedPolicyArns"):
                    raise UnsupportedPolicy(f"{role_arn}: AWS-managed policies are not modelled")
                for inline in role.properties.get("Policies", []):
                    statements += self.resolve(role.stack, inline["PolicyDocument"])["Statement"]
        return statements

    def _resource_policies(self, type_: str, targets: str, arn: str) -> list[list[dict[str, Any]]]:
        found = []
        for policy in self.resources(type_):
            if arn in self.resolve(policy.stack, policy.properties[targets]):
                found.append(
                    self.resolve(policy.stack, policy.properties["PolicyDocument"])["Statement"]
                )
        return found


# -- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    principal: str  # a service principal ("cloudwatch.amazonaws.com") or a role ARN
    action: str
    resource: str
    context: Mapping[str, str | tuple[str, ...]]  # a tuple for a multi-valued key

    @property
    def is_service(self) -> bool:
        return not self.principal.startswith("arn:")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    regex = fnmatch.translate(pattern)  # '*' and '?' as IAM means them ('[' never appears)
    return re.match(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _principal_matches(principal: Any, request: Request, account: str) -> tuple[bool, bool]:
    """(matches, delegates_to_iam): the `:root` principal delegates to IAM policies."""
    if principal == "*" or principal == {"AWS": "*"}:  # the same to AWS
        return True, False
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"principal {principal!r}")
    unknown = set(principal) - {"Service", "AWS"}
    if unknown:
        raise UnsupportedPolicy(f"principal kinds {sorted(unknown)}")
    if request.is_service:
        return request.principal in _as_list(principal.get("Service")), False
    for arn in _as_list(principal.get("AWS")):
        if arn in ("*", request.principal):
            return True, False
        if arn in (f"arn:{PARTITION}:iam::{account}:root", account):
            return False, True
    return False, False


_OPERATORS = {
    "StringEquals": lambda pattern, value: pattern == value,
    "StringLike": lambda pattern, value: _wildcard(pattern, value),
    "ArnEquals": lambda pattern, value: pattern == value,
    "ArnLike": lambda pattern, value: _wildcard(pattern, value),
    "Bool": lambda pattern, value: str(pattern).lower() == str(value).lower(),
}


def _conditions_hold(
    conditions: Mapping[str, Any], context: Mapping[str, str | tuple[str, ...]]
) -> bool:
    # Condition keys are case-insensitive.
    context = {key.lower(): value for key, value in context.items()}
    for operator, tests in conditions.items():
        qualifier, _, base = operator.removesuffix("IfExists").rpartition(":")
        if qualifier not in ("", "ForAnyValue"):
            raise UnsupportedPolicy(f"condition operator {operator}")
        negated = base.startswith(("StringNot", "ArnNot"))
        positive = base.replace("StringNot", "String").replace("ArnNot", "Arn")
        if positive not in _OPERATORS:
            raise UnsupportedPolicy(f"condition operator {operator}")
        for key, patterns in tests.items():
            value = context.get(key.lower())
            if value is None:
                # A missing key satisfies only IfExists and the negated operators.
                if operator.endswith("IfExists") or negated:
                    continue
                return False
            values = value if isinstance(value, tuple) else (value,)
            if len(values) > 1 and not qualifier:
                raise UnsupportedPolicy(f"{key}: several values need ForAnyValue/ForAllValues")
            matched = any(
                _OPERATORS[positive](str(p), v) for p in _as_list(patterns) for v in values
            )
            if matched == negated:
                return False
    return True


def _statement_applies(
    statement: Mapping[str, Any], request: Request, account: str, *, resource_policy: bool
) -> tuple[bool, bool]:
    """(applies, delegates_to_iam) for one statement."""
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise UnsupportedPolicy(unsupported)
    if not any(
        _wildcard(str(a), request.action, case_sensitive=False)
        for a in _as_list(statement["Action"])
    ):
        return False, False
    # A key policy's "*" resource means the key itself.
    if not any(_wildcard(str(r), request.resource) for r in _as_list(statement["Resource"])):
        return False, False
    delegates = False
    if resource_policy:
        matches, delegates = _principal_matches(statement.get("Principal"), request, account)
        if not (matches or delegates):
            return False, False
    elif "Principal" in statement:
        raise UnsupportedPolicy("a Principal in an identity policy")
    if not _conditions_hold(statement.get("Condition", {}), request.context):
        return False, False
    return True, delegates


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def evaluate(
    request: Request,
    *,
    account: str,
    resource_policies: Iterable[list[dict[str, Any]]],
    identity_policy: list[dict[str, Any]],
    key_policy: bool = False,
) -> Decision:
    """AWS's decision for one request: explicit deny > allow > implicit deny."""
    resource_allow = delegated = identity_allow = False
    for statements in resource_policies:
        for statement in statements:
            applies, delegates = _statement_applies(
                statement, request, account, resource_policy=True
            )
            if not applies:
                continue
            if statement["Effect"] == "Deny":
                return Decision(False, f"explicit deny {statement.get('Sid', statement)}")
            if delegates:
                delegated = True
            else:
                resource_allow = True
    if not request.is_service:
        for statement in identity_policy:
            applies, _ = _statement_applies(statement, request, account, resource_policy=False)
            if not applies:
                continue
            if statement["Effect"] == "Deny":
                return Decision(False, "explicit deny in the identity policy")
            identity_allow = True
    if resource_allow:
        return Decision(True, "allowed by the resource policy")
    if request.is_service:
        return Decision(False, "no resource-based policy allows the service principal")
    if key_policy:
        if delegated and identity_allow:
            return Decision(True, "key policy delegates to IAM; the identity policy allows")
        return Decision(False, "neither the key policy nor IAM (through it) allows")
    if identity_allow:
        return Decision(True, "allowed by the identity policy")
    return Decision(False, "no policy allows")


def can_publish(
    deployment: Deployment, *, principal: str, topic_arn: str, context: Mapping[str, str]
) -> list[str]:
    """Why `principal` cannot publish to the (KMS-encrypted) topic: empty if it can.

    Publishing needs sns:Publish on the topic and, for an encrypted topic, the KMS actions
    SNS performs with the publisher's permissions (GenerateDataKey and Decrypt).
    """
    problems = []
    identity = [] if not principal.startswith("arn:") else deployment.identity_policies(principal)
    sns_request = Request(principal, "sns:Publish", topic_arn, context)
    sns_decision = evaluate(
        sns_request,
        account=deployment.account,
        resource_policies=deployment.topic_policies(topic_arn),
        identity_policy=identity,
    )
    if not sns_decision.allowed:
        problems.append(f"sns:Publish on {topic_arn}: {sns_decision.reason}")
    topic = next(
        t for t in deployment.resources("AWS::SNS::Topic")
        if deployment._attribute(t, "Arn") == topic_arn
    )  # fmt: skip
    key = topic.properties.get("KmsMasterKeyId")
    if key is None:
        return problems
    key_arn = deployment.resolve(topic.stack, key)
    if not str(key_arn).startswith("arn:"):
        key_arn = deployment._attribute(deployment.referenced(topic.stack, key), "Arn")
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        decision = evaluate(
            Request(principal, action, key_arn, context),
            account=deployment.account,
            resource_policies=[deployment.key_policy(key_arn)],
            identity_policy=identity,
            key_policy=True,
        )
        if not decision.allowed:
            problems.append(f"{action} on {key_arn}: {decision.reason}")
    return problems
