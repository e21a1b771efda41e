"""Every AWS call the code makes in the sandbox, and what AWS would authorise for it.

`Recorder` hooks the default boto3 session (every client the handlers, the review functions and the CLI
make comes from it) and records each call with the principal it runs as on AWS (`sandbox.acting_as`), and
with the state its authorisation depends on, read at call time: the tags of the object version it touches
(`s3:ExistingObjectTag/...`), the key an object or bucket is encrypted with. Calls made by no principal
(the test's own setup) are not recorded.

`requests_for(call)` turns one call into the IAM requests AWS evaluates for it: the action(s) it needs,
on which resource, with which condition keys, plus the KMS requests S3, DynamoDB and SNS make with the
caller's permissions (`kms:ViaService`). An operation without a mapping raises: a new kind of call cannot
slip past the permission test unchecked.

`service_requests(policies)` adds what AWS services do on the stack's behalf, read from the template: alarms
publishing to their topic, rules delivering to their queue, Lambda polling its queues and streams, the
scheduler and the state machine invoking functions.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

import boto3
from botocore.exceptions import ClientError

from hashcheck.tools import sandbox
from tests.iam.stack import ACCOUNT, REGION, StackPolicies


@dataclass
class Call:
    principal: str
    service: str
    operation: str
    params: dict
    state: dict = field(default_factory=dict)

    def __str__(self) -> str:
        where = self.params.get("Bucket") or self.params.get("TableName") or self.params.get("TopicArn") or ""
        return f"{self.principal}: {self.service}.{self.operation} {where} {self.params.get('Key', '')}".rstrip()


@dataclass
class Request:
    action: str
    resource: str
    context: dict[str, Any]
    call: str = ""  # what asked for it, for the failure message


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        # made before the hook is registered: the recorder's own reads are not recorded
        self._s3 = boto3.client("s3", region_name=REGION)

    def install(self) -> Recorder:
        assert boto3.DEFAULT_SESSION is not None, "deploy the sandbox first: it sets up the default session"
        boto3.DEFAULT_SESSION.events.register("before-parameter-build", self._on_call)
        return self

    def _on_call(self, params: dict, model: Any, **_: Any) -> None:
        principal = sandbox.current_principal()
        if principal is None:
            return
        service, operation = model.service_model.service_name, model.name
        state = self._state(operation, params) if service == "s3" else {}
        kept = {k: copy.deepcopy(v) for k, v in params.items() if k != "Body"}  # a body may be a stream
        self.calls.append(Call(principal, service, operation, kept, state))

    def _state(self, operation: str, params: dict) -> dict:
        state: dict[str, Any] = {}
        if "Key" in params and operation not in ("PutObject", "CreateMultipartUpload"):
            state["tags"], state["kms_key"] = self._object(params["Bucket"], params["Key"], params.get("VersionId"))
        source = params.get("CopySource")
        if source:
            bucket, key, version = _copy_source(source)
            state["source_tags"], state["source_kms_key"] = self._object(bucket, key, version)
        if "Bucket" in params:
            state["bucket_kms_key"] = self._bucket_key(params["Bucket"])
        return state

    def _object(self, bucket: str, key: str, version: str | None) -> tuple[dict[str, str], str | None]:
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
        try:
            tags = self._s3.get_object_tagging(**args)["TagSet"]
            head = self._s3.head_object(**args)
        except ClientError:
            return {}, None  # not there (yet, or any more): no tags to condition on
        return {t["Key"]: t["Value"] for t in tags}, head.get("SSEKMSKeyId")

    def _bucket_key(self, bucket: str) -> str | None:
        try:
            rules = self._s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError:
            return None
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
        return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm") == "aws:kms" else None


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    if isinstance(source, dict):
        return source["Bucket"], source["Key"], source.get("VersionId")
    path, _, query = str(source).lstrip("/").partition("?versionId=")
    bucket, _, key = path.partition("/")
    return bucket, unquote(key), query or None


# --- one call -> the requests AWS evaluates -------------------------------------------------------------------


def requests_for(call: Call, policies: StackPolicies) -> list[Request]:
    mapper = _MAPPERS.get(call.service)
    if mapper is None:
        raise NotImplementedError(f"no IAM mapping for {call.service} calls ({call})")
    requests = mapper(call, policies)
    for request in requests:
        request.call = str(call)
    return requests


def _base(principal_arn: str) -> dict[str, Any]:
    return {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": ACCOUNT, "aws:SecureTransport": "true"}


def _kms(action: str, key: str | None, service: str) -> list[Request]:
    if not key:
        return []
    arn = key if key.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"
    context = {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}
    return [Request(action, arn, context)]


_S3_OBJECT = {  # operation -> (action, action on a version)
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectAttributes": ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    "PutObjectLegalHold": ("s3:PutObjectLegalHold", "s3:PutObjectLegalHold"),
    "GetObjectLegalHold": ("s3:GetObjectLegalHold", "s3:GetObjectLegalHold"),
    "PutObjectRetention": ("s3:PutObjectRetention", "s3:PutObjectRetention"),
    "PutObject": ("s3:PutObject", "s3:PutObject"),
    "CreateMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "UploadPart": ("s3:PutObject", "s3:PutObject"),
    "CompleteMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    "CopyObject": ("s3:PutObject", "s3:PutObject"),
    "UploadPartCopy": ("s3:PutObject", "s3:PutObject"),
}
_S3_BUCKET = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "HeadBucket": "s3:ListBucket",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}


def _s3(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    params, op, state = call.params, call.operation, call.state
    bucket = params["Bucket"]
    if op == "DeleteObjects":
        return [
            Request(
                "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
                f"arn:aws:s3:::{bucket}/{o['Key']}",
                _base(principal),
            )
            for o in params["Delete"]["Objects"]
        ]
    if op in _S3_BUCKET:
        return [Request(_S3_BUCKET[op], f"arn:aws:s3:::{bucket}", _base(principal))]
    if op not in _S3_OBJECT:
        raise NotImplementedError(f"no IAM mapping for s3.{op}")
    plain, versioned = _S3_OBJECT[op]
    target = f"arn:aws:s3:::{bucket}/{params['Key']}"
    context = _base(principal)
    context.update({f"s3:ExistingObjectTag/{k}": v for k, v in state.get("tags", {}).items()})
    context.update(_object_lock_keys(params))
    requests = [Request(versioned if params.get("VersionId") else plain, target, context)]
    tagging = _request_tags(params)
    if tagging is not None:
        context.update({f"s3:RequestObjectTag/{k}": v for k, v in tagging.items()})
        context["s3:RequestObjectTagKeys"] = sorted(tagging)
    if op in ("PutObject", "CopyObject", "CreateMultipartUpload") and tagging:
        requests.append(Request("s3:PutObjectTagging", target, dict(context)))
    if params.get("BypassGovernanceRetention"):
        requests.append(Request("s3:BypassGovernanceRetention", target, dict(context)))
    if "CopySource" in params:
        requests += _copy_source_requests(call, principal, context)
    writes = op in ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy")
    if writes:
        key = params.get("SSEKMSKeyId") or state.get("bucket_kms_key")
        requests += _kms("kms:GenerateDataKey", key, "s3") + _kms("kms:Decrypt", key, "s3")
    elif op == "GetObject":
        requests += _kms("kms:Decrypt", state.get("kms_key"), "s3")
    return requests


def _object_lock_keys(params: dict) -> dict[str, str]:
    """The Object Lock condition keys a request carries (a legal hold's status, a retention's mode and date)."""
    keys = {}
    hold = params.get("LegalHold", {}).get("Status") or params.get("ObjectLockLegalHoldStatus")
    if hold:
        keys["s3:object-lock-legal-hold"] = hold
    mode = params.get("Retention", {}).get("Mode") or params.get("ObjectLockMode")
    if mode:
        keys["s3:object-lock-mode"] = mode
    until = params.get("Retention", {}).get("RetainUntilDate") or params.get("ObjectLockRetainUntilDate")
    if until:
        keys["s3:object-lock-retain-until-date"] = str(until)
    return keys


def _request_tags(params: dict) -> dict[str, str] | None:
    if "Tagging" not in params:
        return None
    tagging = params["Tagging"]
    if isinstance(tagging, dict):  # PutObjectTagging
        return {t["Key"]: t["Value"] for t in tagging["TagSet"]}
    from urllib.parse import parse_qsl

    return dict(parse_qsl(tagging, keep_blank_values=True))


def _copy_source_requests(call: Call, principal: str, target_context: dict) -> list[Request]:
    bucket, key, version = _copy_source(call.params["CopySource"])
    source = f"arn:aws:s3:::{bucket}/{key}"
    target_context["s3:x-amz-copy-source"] = f"{bucket}/{quote(key)}" + (f"?versionId={version}" if version else "")
    if "MetadataDirective" in call.params:
        target_context["s3:x-amz-metadata-directive"] = call.params["MetadataDirective"]
    context = _base(principal)
    context.update({f"s3:ExistingObjectTag/{k}": v for k, v in call.state.get("source_tags", {}).items()})
    requests = [Request("s3:GetObjectVersion" if version else "s3:GetObject", source, context)]
    if call.params.get("TaggingDirective", "COPY") == "COPY" and call.operation == "CopyObject":
        requests.append(Request("s3:GetObjectVersionTagging" if version else "s3:GetObjectTagging", source, context))
    return requests + _kms("kms:Decrypt", call.state.get("source_kms_key"), "s3")


def _dynamodb(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    params, op = call.params, call.operation
    requests = []
    if op in ("BatchGetItem", "BatchWriteItem"):
        for table, body in params["RequestItems"].items():
            keys = body["Keys"] if op == "BatchGetItem" else [_write_key(w) for w in body]
            requests.append(_table_request(f"dynamodb:{op}", table, keys, principal, policies))
    else:
        table = params["TableName"]
        keys = [params["Key"]] if "Key" in params else [params["Item"]] if "Item" in params else []
        if op == "Query":
            keys = [{k: v for k, v in (params.get("ExpressionAttributeValues") or {}).items()}]
        index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
        requests.append(_table_request(f"dynamodb:{op}", table, keys, principal, policies, index))
    # A table encrypted with a customer managed key whose policy delegates to IAM: the caller's own
    # policy must let it use the key through DynamoDB (reads decrypt, writes also make data keys).
    tables = params["RequestItems"] if op in ("BatchGetItem", "BatchWriteItem") else [params["TableName"]]
    writes = op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
    for table in tables:
        key = _table_key(table, policies)
        requests += _kms("kms:Decrypt", key, "dynamodb") + (
            _kms("kms:GenerateDataKey", key, "dynamodb") if writes else []
        )
    return requests


def _table_key(table: str, policies: StackPolicies) -> str | None:
    for name, resource in policies.template["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::Table" and policies.names.get(name) == table:
            key = resource["Properties"].get("SSESpecification", {}).get("KMSMasterKeyId")
            return key if isinstance(key, str) else None
    return None


def _write_key(write: dict) -> dict:
    return write.get("PutRequest", {}).get("Item") or write.get("DeleteRequest", {}).get("Key") or {}


def _table_request(
    action: str, table: str, keys: list, principal: str, policies: StackPolicies, index: str = ""
) -> Request:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}{index}"
    context = _base(principal)
    partition = _partition_key(table, policies)
    values = sorted({next(iter(k[partition].values())) for k in keys if partition in k})
    if values and action != "dynamodb:Scan":
        context["dynamodb:LeadingKeys"] = values
    return Request(action, arn, context)


def _partition_key(table: str, policies: StackPolicies) -> str:
    for name, resource in policies.template["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::Table" and policies.names.get(name) == table:
            return next(k["AttributeName"] for k in resource["Properties"]["KeySchema"] if k["KeyType"] == "HASH")
    return "pk"


def _sns(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    topic = call.params["TopicArn"]
    requests = [Request(f"sns:{call.operation}", topic, _base(principal))]
    key = _topic_key(topic, policies)
    return requests + _kms("kms:GenerateDataKey", key, "sns") + _kms("kms:Decrypt", key, "sns")


def _topic_key(topic: str, policies: StackPolicies) -> str | None:
    for name, resource in policies.template["Resources"].items():
        if resource["Type"] == "AWS::SNS::Topic" and policies.arns.get(name) == topic:
            key = resource["Properties"].get("KmsMasterKeyId")
            return _key_arn(key, policies) if key else None
    return None


def _key_arn(key: str, policies: StackPolicies) -> str:
    """A key ARN from whatever the template gave (an ARN, or a key id: Ref of an AWS::KMS::Key)."""
    if key.startswith("arn:"):
        return key
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"


def _events(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    buses = {e.get("EventBusName", "default") for e in call.params["Entries"]}
    return [
        Request("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}", _base(principal))
        for bus in sorted(buses)
    ]


def _sqs(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    url = call.params.get("QueueUrl", "")
    name = url.rsplit("/", 1)[-1] or call.params.get("QueueName", "")
    # the batch operations are authorized as their single forms (there is no sqs:SendMessageBatch action)
    action = call.operation.removesuffix("Batch")
    return [Request(f"sqs:{action}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", _base(principal))]


def _secretsmanager(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    secret = call.params["SecretId"]
    arn = secret if secret.startswith("arn:") else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf"
    return [Request(f"secretsmanager:{call.operation}", arn, _base(principal))]


def _ssm(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    name = call.params["Name"].lstrip("/")
    return [Request(f"ssm:{call.operation}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name}", _base(principal))]


def _cloudformation(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    stack_id = policies.names["AWS::StackId"]  # the sandbox deploys one stack
    return [Request(f"cloudformation:{call.operation}", stack_id, _base(principal))]


def _stepfunctions(call: Call, policies: StackPolicies) -> list[Request]:
    principal = policies.principals[call.principal].arn
    return [Request(f"states:{call.operation}", call.params["stateMachineArn"], _base(principal))]


def _lambda(call: Call, policies: StackPolicies) -> list[Request]:
    if call.operation != "Invoke":
        raise NotImplementedError(f"no IAM mapping for lambda.{call.operation}")
    principal = policies.principals[call.principal].arn
    name = call.params["FunctionName"]
    arn = name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return [Request("lambda:InvokeFunction", arn, _base(principal))]


def _sts(call: Call, policies: StackPolicies) -> list[Request]:
    return []  # GetCallerIdentity needs no permission


_MAPPERS = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "sns": _sns,
    "events": _events,
    "sqs": _sqs,
    "lambda": _lambda,
    "secretsmanager": _secretsmanager,
    "ssm": _ssm,
    "cloudformation": _cloudformation,
    "sts": _sts,
    "stepfunctions": _stepfunctions,
}


# --- what AWS services do for the stack --------------------------------------------------------------------------


@dataclass
class ServiceRequest:
    principal: str  # a principal name in StackPolicies.principals, or a service principal
    request: Request


def service_requests(policies: StackPolicies) -> list[ServiceRequest]:
    out: list[ServiceRequest] = []
    resources = policies.template["Resources"]
    service_context = {"aws:SourceAccount": ACCOUNT, "aws:SecureTransport": "true"}
    for name, resource in resources.items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::CloudWatch::Alarm":
            for topic in props.get("AlarmActions", []):
                context = {**service_context, "aws:SourceArn": policies.arns[name]}
                out.append(ServiceRequest("cloudwatch.amazonaws.com", Request("sns:Publish", topic, context, name)))
                out += _service_kms("cloudwatch.amazonaws.com", _topic_key(topic, policies), name, context)
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                context = {**service_context, "aws:SourceArn": policies.arns[name]}
                arn = target["Arn"]
                if ":sqs:" in arn:
                    out.append(ServiceRequest("events.amazonaws.com", Request("sqs:SendMessage", arn, context, name)))
                elif ":sns:" in arn:
                    out.append(ServiceRequest("events.amazonaws.com", Request("sns:Publish", arn, context, name)))
                    out += _service_kms("events.amazonaws.com", _topic_key(arn, policies), name, context)
                dead = target.get("DeadLetterConfig", {}).get("Arn")
                if dead:
                    out.append(ServiceRequest("events.amazonaws.com", Request("sqs:SendMessage", dead, context, name)))
        elif kind == "AWS::Lambda::EventSourceMapping":
            source = props["EventSourceArn"]
            actions = (
                ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
                if ":sqs:" in source
                else ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
            )
            function = _function_named(props["FunctionName"], policies) or props["FunctionName"]
            for action in actions:
                out.append(ServiceRequest(function, Request(action, source, {}, name)))
            failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if failure:  # a batch that failed every retry: its place, sent as the function
                out.append(ServiceRequest(function, Request("sqs:SendMessage", failure, {}, name)))
        elif kind == "AWS::Scheduler::Schedule":
            target = props["Target"]
            role = _role_named(target["RoleArn"], policies)
            out.append(ServiceRequest(role, Request("lambda:InvokeFunction", target["Arn"], {}, name)))
            dead = target.get("DeadLetterConfig", {}).get("Arn")  # a run it could not start
            if dead:
                out.append(ServiceRequest(role, Request("sqs:SendMessage", dead, {}, name)))
        elif kind == "AWS::Lambda::EventInvokeConfig":  # Lambda sends a failed asynchronous run as the function
            function = _function_named(props["FunctionName"], policies) or props["FunctionName"]
            failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if failure:
                out.append(ServiceRequest(function, Request("sqs:SendMessage", failure, {}, name)))
        elif kind == "AWS::StepFunctions::StateMachine":
            role = _role_named(props["RoleArn"], policies)
            for function in props.get("DefinitionSubstitutions", {}).values():
                if ":function:" in str(function):
                    out.append(ServiceRequest(role, Request("lambda:InvokeFunction", function, {}, name)))
            out += [ServiceRequest(role, request) for request in _map_requests(props, name, policies)]
    return out


def _map_requests(props: dict, name: str, policies: StackPolicies) -> list[Request]:
    """What a state machine's Distributed Maps do themselves: list their ItemReader's bucket (a fixed one,
    or, when the input names it, any bucket the backfill may be given) and write their results."""
    definition = props.get("Definition") or json.loads(props.get("DefinitionString") or "{}")
    substitutions = props.get("DefinitionSubstitutions", {})

    def named(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: str(substitutions[m.group(1)]), value)

    out = []
    for state in _map_states(definition.get("States", {})):
        reader = state.get("ItemReader", {}).get("Parameters", {})
        fixed = "Bucket" in reader  # else "Bucket.$": the backfill lists whichever bucket it is given
        buckets = [f"arn:aws:s3:::{named(reader['Bucket'])}"] if fixed else _backfilled_buckets(policies)
        out += [Request("s3:ListBucket", bucket, {}, name) for bucket in buckets]
        writer = state.get("ResultWriter", {}).get("Parameters", {})
        if writer:
            key = f"arn:aws:s3:::{named(writer['Bucket'])}/{named(writer.get('Prefix', ''))}/manifest.json"
            out.append(Request("s3:PutObject", key, {}, name))
    return out


def _map_states(states: dict) -> list[dict]:
    found = []
    for state in states.values():
        if state.get("Type") == "Map":
            found.append(state)
            found += _map_states(state.get("ItemProcessor", {}).get("States", {}))
    return found


def _role_named(arn: str, policies: StackPolicies) -> str:
    return next(name for name, p in policies.principals.items() if p.arn == arn)


def _backfilled_buckets(policies: StackPolicies) -> list[str]:
    protected = [b for b in str(policies.template["Parameters"].get("ProtectedBucketNames", "")).split(",") if b]
    return [policies.arns["UploadBucket"], *(f"arn:aws:s3:::{b}" for b in protected)]


def _service_kms(service: str, key: str | None, caller: str, context: dict) -> list[ServiceRequest]:
    if not key:
        return []
    return [
        ServiceRequest(service, Request(action, key, dict(context), caller))
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
    ]


def _function_named(function: str, policies: StackPolicies) -> str | None:
    for name, resource in policies.template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function" and function in (policies.names.get(name), name):
            return name
    return None


def encode_tags(tags: dict[str, str]) -> str:
    return urlencode(tags)
