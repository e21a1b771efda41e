"""The policies of a stack deployed into the sandbox, rendered with the names and ARNs moto gave its resources.

`StackPolicies.of(stack)` takes the translated template the sandbox deployed (SAM's policy templates already
expanded), resolves its intrinsics (Ref, GetAtt, Sub, Join, Split, Select, If and the Conditions, for the
parameters the stack was deployed with) against the physical resources, and collects:

- `principals`: each role the stack creates (by its logical id, and by the logical id of the function or state
  machine that runs as it), with every identity policy attached: inline, customer managed (from the
  template) and AWS managed (`AWS_MANAGED`, copied from the AWS documentation, since they are not in the
  template); plus the people: the reviewer (a role the stack names but does not create), the custodian and
  break-glass roles, an administrator, and the outsiders of the access matrix;
- `resource_policies`: by resource ARN, every bucket, queue, topic and key policy.

moto does not create bucket or queue policies at all: these documents are the template's own, which is
what AWS would enforce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hashcheck.tools.sandbox import REGION, STACK

ACCOUNT = "123456789012"  # moto's
PARTITION = "aws"
NO_VALUE = object()

# AWS managed policies that SAM attaches to function roles (documents as AWS publishes them; only the
# statements that matter for what hashcheck calls are kept exact, logging and tracing are kept too).
AWS_MANAGED: dict[str, dict] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": ["*"],
            }
        ],
    },
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            },
        ],
    },
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/AdministratorAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    },
}


@dataclass
class Principal:
    name: str
    arn: str  # a role ARN, "*" for anonymous, or a service principal ("cloudwatch.amazonaws.com")
    policies: list[dict] = field(default_factory=list)

    @property
    def is_service(self) -> bool:
        return self.arn.endswith(".amazonaws.com")


@dataclass
class StackPolicies:
    principals: dict[str, Principal]
    resource_policies: dict[str, dict]  # resource ARN -> policy document
    arns: dict[str, str]  # logical id -> ARN (or the name, for what has no ARN)
    names: dict[str, str]  # logical id -> Ref value
    template: dict[str, Any]  # the resolved template (resources whose Condition is false left out)

    @classmethod
    def of(
        cls,
        stack: Any,
        extra_principals: dict[str, Principal] | None = None,
        bucket_policies: dict[str, dict] | None = None,
    ) -> StackPolicies:
        """`bucket_policies`: policies of buckets outside the stack (by name), as `hashcheck protect` left them."""
        resolver = _Resolver(stack)
        template = resolver.resolved()
        principals = _principals(template, resolver)
        principals.update(_named_principals(template, principals))
        principals.update(extra_principals or {})
        resource_policies = _resource_policies(template, resolver)
        resource_policies.update({f"arn:aws:s3:::{name}": doc for name, doc in (bucket_policies or {}).items()})
        return cls(principals, resource_policies, resolver.arns, resolver.refs, template)

    def resource_policy(self, resource_arn: str) -> dict | None:
        """The resource policy that governs `resource_arn`: an object's bucket, or the resource itself."""
        if resource_arn.startswith("arn:aws:s3:::"):
            bucket = resource_arn[len("arn:aws:s3:::") :].split("/", 1)[0]
            return self.resource_policies.get(f"arn:aws:s3:::{bucket}")
        return self.resource_policies.get(resource_arn)

    def role_of(self, logical_id: str) -> str:
        """The role logical id a function or state machine runs as."""
        props = self.template["Resources"][logical_id]["Properties"]
        role = props.get("Role") or props.get("RoleArn")
        return role.split("/")[-1] if isinstance(role, str) else logical_id + "Role"


# --- resolving the template --------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, stack: Any):
        self.stack = stack
        self.template = stack.template
        self.parameters = {
            name: stack.parameters.get(name, spec.get("Default", ""))
            for name, spec in self.template.get("Parameters", {}).items()
        }
        self.refs, self.arns, self.attributes = _physical(stack, self.template)
        described = stack.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
        self.refs["AWS::StackId"] = described["StackId"]
        self.conditions: dict[str, bool] = {}
        for name in self.template.get("Conditions", {}):
            self.condition(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def resolved(self) -> dict:
        resources = {
            name: self.value(resource)
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
        return {"Resources": resources, "Parameters": self.parameters}

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": STACK,
            "AWS::StackId": self.refs["AWS::StackId"],
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            value = self.parameters[name]
            kind = self.template["Parameters"][name].get("Type", "String")
            return [v for v in str(value).split(",") if v] if kind == "CommaDelimitedList" else value
        return self.refs.get(name, f"unresolved:{name}")

    def get_att(self, name: str, attribute: str) -> Any:
        if attribute == "Arn":
            return self.arns.get(name, f"unresolved:{name}.Arn")
        return self.attributes.get((name, attribute), f"unresolved:{name}.{attribute}")

    def sub(self, text: str, variables: dict) -> str:
        out, i = [], 0
        while (start := text.find("${", i)) >= 0:
            end = text.index("}", start)
            out.append(text[i:start])
            name = text[start + 2 : end]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and not name.startswith("AWS::"):
                out.append(str(self.get_att(*name.split(".", 1))))
            else:
                out.append(str(self.ref(name)))
            i = end + 1
        out.append(text[i:])
        return "".join(out)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, arg)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}


def _sub(resolver: _Resolver, arg: Any) -> str:
    if isinstance(arg, str):
        return resolver.sub(arg, {})
    text, variables = arg
    return resolver.sub(text, {k: resolver.value(v) for k, v in variables.items()})


def _if(resolver: _Resolver, arg: list) -> Any:
    name, yes, no = arg
    return resolver.value(yes if resolver.condition(name) else no)


def _join(resolver: _Resolver, arg: list) -> str:
    separator, values = arg
    return separator.join(str(v) for v in resolver.value(values))


def _split(resolver: _Resolver, arg: list) -> list:
    separator, text = arg
    return str(resolver.value(text)).split(separator)


def _select(resolver: _Resolver, arg: list) -> Any:
    index, values = arg
    return resolver.value(values)[int(resolver.value(index))]


def _get_att(resolver: _Resolver, arg: Any) -> Any:
    name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
    return resolver.get_att(name, attribute)


_FUNCTIONS = {
    "Ref": lambda r, arg: r.ref(arg),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::If": _if,
    "Fn::Join": _join,
    "Fn::Split": _split,
    "Fn::Select": _select,
    "Fn::Equals": lambda r, arg: r.value(arg[0]) == r.value(arg[1]),
    "Fn::Not": lambda r, arg: not r.value(arg[0]),
    "Fn::And": lambda r, arg: all(r.value(a) for a in arg),
    "Fn::Or": lambda r, arg: any(r.value(a) for a in arg),
    "Condition": lambda r, arg: r.condition(arg),
}


def _physical(stack: Any, template: dict) -> tuple[dict[str, str], dict[str, str], dict[tuple[str, str], str]]:
    """Ref values, ARNs and other attributes of the resources moto created."""
    cfn = stack.client("cloudformation")
    summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    refs, arns, attributes = {}, {}, {}
    base = f"{REGION}:{ACCOUNT}"
    for summary in summaries:
        name, kind, physical = summary["LogicalResourceId"], summary["ResourceType"], summary["PhysicalResourceId"]
        refs[name] = physical
        if kind == "AWS::S3::Bucket":
            arns[name] = f"arn:aws:s3:::{physical}"
        elif kind == "AWS::IAM::Role":
            arns[name] = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        elif kind == "AWS::KMS::Key":
            arns[name] = f"arn:aws:kms:{base}:key/{physical}"
        elif kind == "AWS::SQS::Queue":
            queue = physical.rsplit("/", 1)[-1]
            arns[name] = f"arn:aws:sqs:{base}:{queue}"
            attributes[(name, "QueueName")] = queue
        elif kind == "AWS::SNS::Topic":
            arns[name] = physical
            attributes[(name, "TopicName")] = physical.rsplit(":", 1)[-1]
        elif kind == "AWS::DynamoDB::Table":
            arns[name] = f"arn:aws:dynamodb:{base}:table/{physical}"
            stream = stack.client("dynamodb").describe_table(TableName=physical)["Table"].get("LatestStreamArn")
            attributes[(name, "StreamArn")] = stream or f"{arns[name]}/stream/none"
        elif kind == "AWS::Events::Rule":
            arns[name] = f"arn:aws:events:{base}:rule/{physical}"
        elif kind == "AWS::Lambda::Function":
            arns[name] = f"arn:aws:lambda:{base}:function:{physical}"
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::StepFunctions::StateMachine"):
            arns[name] = physical
    # What moto did not create is named as CloudFormation would name it (only its ARN's shape matters).
    for name, resource in template["Resources"].items():
        if name in refs:
            continue
        refs[name] = f"{STACK}-{name}"
        if resource["Type"] == "AWS::Events::Rule":
            arns[name] = f"arn:aws:events:{base}:rule/{STACK}-{name}"
        elif resource["Type"] == "AWS::CloudWatch::Alarm":
            arns[name] = f"arn:aws:cloudwatch:{base}:alarm:{STACK}-{name}"
    return refs, arns, attributes


# --- who is who --------------------------------------------------------------------------------------------


def _principals(template: dict, resolver: _Resolver) -> dict[str, Principal]:
    resources = template["Resources"]
    managed = {
        resolver.refs[name]: r["Properties"]["PolicyDocument"]
        for name, r in resources.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    }
    out: dict[str, Principal] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        props = resource["Properties"]
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        for arn in props.get("ManagedPolicyArns", []):
            if arn not in managed and arn not in AWS_MANAGED:
                raise KeyError(f"{name}: managed policy {arn} is unknown to the permission tests")
            docs.append(managed.get(arn) or AWS_MANAGED[arn])
        out[name] = Principal(name, resolver.arns[name], docs)
    # a function or state machine acts as its role
    for name, resource in resources.items():
        role = resource.get("Properties", {}).get("Role") or resource.get("Properties", {}).get("RoleArn")
        if resource["Type"] in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine") and role:
            role_name = next((n for n, p in out.items() if p.arn == role), None)
            if role_name:
                out[name] = out[role_name]
    return out


def _named_principals(template: dict, principals: dict[str, Principal]) -> dict[str, Principal]:
    """People: the reviewer (a role the stack names; people attach its policy), the evidence keepers
    (roles the stack creates) and an administrator."""
    resources = template["Resources"]
    reviewer = [resources[n]["Properties"]["PolicyDocument"] for n in ("ReviewerPolicy",) if n in resources]
    role = f"arn:aws:iam::{ACCOUNT}:role/"
    return {
        "reviewer": Principal("reviewer", role + "hashcheck-reviewer", reviewer),
        "custodian": principals["EvidenceCustodianRole"],
        "break-glass": principals["EvidenceBreakGlassRole"],
        "admin": Principal("admin", role + "Admin", [AWS_MANAGED["arn:aws:iam::aws:policy/AdministratorAccess"]]),
    }


def _resource_policies(template: dict, resolver: _Resolver) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, resource in template["Resources"].items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::S3::BucketPolicy":
            out[f"arn:aws:s3:::{props['Bucket']}"] = props["PolicyDocument"]
        elif kind == "AWS::SQS::QueuePolicy":
            for url in props["Queues"]:
                out[f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"] = props["PolicyDocument"]
        elif kind == "AWS::SNS::TopicPolicy":
            for topic in props["Topics"]:
                out[topic] = props["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            out[resolver.arns[name]] = props["KeyPolicy"]
    return out


def dump(policies: StackPolicies) -> str:
    """Everything rendered, for a person reading a failure."""
    return json.dumps(
        {
            "principals": {n: p.__dict__ for n, p in policies.principals.items()},
            "resources": policies.resource_policies,
        },
        indent=1,
        default=str,
    )
