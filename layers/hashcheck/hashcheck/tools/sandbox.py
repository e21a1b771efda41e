"""template.yaml deployed into an in-process moto, with the real handlers called when queues deliver.

This is how the demo and the end-to-end tests run the whole stack with no AWS account and no
network: the SAM template is translated (aws-sam-translator, as `sam deploy` would) and created by
moto's CloudFormation, so the resources and the functions' environment come from template.yaml
itself. moto drops some properties and cannot run Lambda code without Docker; `deploy` applies
those properties through the API afterwards, and `deliver` hands queued messages to the handler
in this process, the way the SQS event source mapping would. Needs the `demo` extra (moto,
aws-sam-translator, PyYAML).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import importlib.util
import io
import json
import logging
import os
import sys
import time
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.response import StreamingBody

REGION = "eu-west-1"
STACK = "hashcheck-demo"
CODE_BUCKET = "hashcheck-demo-code"
ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "template.yaml"


def load_template(path: Path = TEMPLATE) -> dict:
    """template.yaml as a dict, with CloudFormation's short tags (!Ref, !Sub...) in their long form."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def long_form(tag: str):
        def construct(loader, node):
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if tag == "Ref":
                    return {"Ref": value}
                return {"Fn::GetAtt": value.split(".", 1)} if tag == "GetAtt" else {f"Fn::{tag}": value}
            if isinstance(node, yaml.SequenceNode):
                return {f"Fn::{tag}": loader.construct_sequence(node, deep=True)}
            return {f"Fn::{tag}": loader.construct_mapping(node, deep=True)}

        return construct

    for tag in ("Ref", "Sub", "GetAtt", "If", "Join", "Split", "Not", "Equals", "Select", "And", "Or", "Base64"):
        Loader.add_constructor(f"!{tag}", long_form(tag))
    Loader.add_constructor("!Condition", lambda loader, node: {"Condition": loader.construct_scalar(node)})  # type: ignore[arg-type]
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass


# Whose code is running: the logical id of the function whose handler the sandbox is calling, or a name a
# test gives (a reviewer, the CLI's operator). Read by whatever records the AWS calls made meanwhile (the
# permission tests), so that each call can be held to the policies of the principal it runs as on AWS.
_ACTING_AS: contextvars.ContextVar[str | None] = contextvars.ContextVar("hashcheck_sandbox_acting_as", default=None)


@contextlib.contextmanager
def acting_as(principal: str | None) -> Iterator[None]:
    """Calls made meanwhile are `principal`'s (None: the sandbox's own, which no policy governs)."""
    token = _ACTING_AS.set(principal)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


def current_principal() -> str | None:
    return _ACTING_AS.get()


@dataclass
class Stack:
    outputs: dict[str, str]
    functions: dict[str, str]  # logical id -> function name
    clients: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # resource types moto did not create
    template: dict[str, Any] = field(default_factory=dict)  # the translated template, triggers included
    parameters: dict[str, str] = field(default_factory=dict)  # as passed to deploy
    invoked: dict[str, Any] = field(default_factory=dict)  # logical id -> handler module loaded for Invoke

    def client(self, service: str) -> Any:
        if service not in self.clients:
            # the default session: it carries the Object Lock quirk's hook (below)
            self.clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        return self.clients[service]

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment as deployed (template Refs resolved to the sandbox's names)."""
        config = self.client("lambda").get_function_configuration(FunctionName=self.functions[function])
        return {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}


def fake_credentials() -> None:
    """moto needs credentials to sign with; these never leave the process."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ[name] = value
    os.environ.pop("AWS_PROFILE", None)


def _moto_object_lock_quirk() -> None:
    """moto insists on a checksum header when copying into a bucket with Object Lock retention,
    where S3 takes the copy's own checksum request: add it to every client of the default session
    (moto resets that session when its mock starts, so this runs inside the mock)."""
    boto3.setup_default_session(region_name=REGION)
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-sign.s3.CopyObject", _checksum_header)


def _checksum_header(request, **_) -> None:
    request.headers["x-amz-sdk-checksum-algorithm"] = "SHA256"


def deploy(parameters: dict[str, str] | None = None, template: Path = TEMPLATE) -> Stack:
    """Translate and create the stack inside an active moto mock; returns its outputs and functions."""
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    _moto_object_lock_quirk()
    sam = load_template(template)
    for resource in sam["Resources"].values():  # sam build/package would upload these; moto needs a zip
        props = resource.get("Properties", {})
        for name in ("CodeUri", "ContentUri"):
            if name in props:
                props[name] = f"s3://{CODE_BUCKET}/code.zip"
        if "DefinitionUri" in props:  # a state machine definition: inline it, as sam package would upload it
            props["Definition"] = json.loads((template.parent / props.pop("DefinitionUri")).read_text())
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=CODE_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=CODE_BUCKET, Key="code.zip", Body=_placeholder_zip())
    cfn = transform(sam, parameters or {}, ManagedPolicyLoader(boto3.client("iam", region_name=REGION)))
    translated = copy.deepcopy(cfn)  # whole, triggers included: what `sam deploy` would create
    # moto would run triggered functions in Docker; the sandbox calls the handlers in process instead
    # (`deliver` for the scan queue), so the triggers themselves are left out.
    cfn["Resources"] = _without(cfn["Resources"], {name for name, r in cfn["Resources"].items() if _runs_a_function(r)})
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with _quiet_moto() as skipped:  # moto parses the template again on every describe call
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(cfn),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        described = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        resources = cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r.get("ResourceType") == "AWS::Lambda::Function"
    }
    stack = Stack(
        outputs, functions, skipped=sorted(set(skipped)), template=translated, parameters=dict(parameters or {})
    )
    _apply_what_moto_drops(stack, cfn)
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.unregister("before-call.lambda.Invoke", unique_id="sandbox-invoke")
    boto3.DEFAULT_SESSION.events.register(
        "before-call.lambda.Invoke",
        functools.partial(_invoke_in_process, stack),  # type: ignore[arg-type]  # a before-call answer is the response
        unique_id="sandbox-invoke",
    )
    return stack


def invoked(stack: Stack, function: str) -> Any:
    """The handler module Lambda Invoke runs for `function` (its logical id), loaded once."""
    if function not in stack.invoked:
        with acting_as(None):  # reading the function's configuration is the sandbox's, not the caller's
            stack.invoked[function] = load_handler(stack, function, function.removesuffix("Function").lower())
    return stack.invoked[function]


def _invoke_in_process(stack: Stack, model: Any, params: dict, **_: Any) -> tuple[AWSResponse, dict]:
    """Lambda Invoke (RequestResponse) as the sandbox runs functions: the function's handler, in this
    process, as that function; its answer, or its error as Lambda reports one."""
    name = unquote(params["url_path"].split("/functions/", 1)[1].split("/", 1)[0]).rsplit(":", 1)[-1]
    logical = next(logical for logical, physical in stack.functions.items() if name in (physical, logical))
    parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    try:
        answer = invoked(stack, logical).handler(json.loads(params["body"] or b"{}"), LambdaContext(name))
    except Exception as exc:  # noqa: BLE001 - what Lambda does with an unhandled error: report it
        answer = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        parsed["FunctionError"] = "Unhandled"
    data = json.dumps(answer).encode()
    parsed["Payload"] = StreamingBody(io.BytesIO(data), len(data))
    return AWSResponse("", 200, HTTPHeaders(), None), parsed


@contextlib.contextmanager
def _quiet_moto():
    """Collect the resource types moto's CloudFormation cannot create (policies, alarms, schedules:
    nothing the sandbox enforces or runs) instead of printing a warning for each."""
    skipped: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "No Moto CloudFormation support" in record.getMessage():
                args = record.args if isinstance(record.args, tuple) else ()
                skipped.append(str(args[0]) if args else record.getMessage())

    moto_logger, handler = logging.getLogger("moto"), Collect()
    propagate = moto_logger.propagate
    moto_logger.addHandler(handler)
    moto_logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield skipped
    finally:
        moto_logger.removeHandler(handler)
        moto_logger.propagate = propagate


def _without(resources: dict, removed: set[str]) -> dict:
    """The resources less `removed` and whatever refers to them (a trigger's Lambda permission)."""
    kept = dict(resources)
    while removed:
        for name in removed:
            kept.pop(name, None)
        removed = {name for name, r in kept.items() if any(_refers_to(r, gone) for gone in removed)}
    return kept


def _refers_to(node, name: str) -> bool:
    if isinstance(node, dict):
        if node.get("Ref") == name or (node.get("Fn::GetAtt") or [None])[0] == name:
            return True
        return any(_refers_to(v, name) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, name) for v in node)
    return False


def _runs_a_function(resource: dict) -> bool:
    """An event source mapping, or an EventBridge rule whose targets are Lambda functions."""
    if resource["Type"] == "AWS::Lambda::EventSourceMapping":
        return True
    if resource["Type"] != "AWS::Events::Rule":
        return False
    targets = resource["Properties"].get("Targets", [])
    return bool(targets) and all(
        "Fn::GetAtt" in t["Arn"] and t["Arn"]["Fn::GetAtt"][1] == "Arn" and "Function" in t["Arn"]["Fn::GetAtt"][0]
        for t in targets
    )


def _placeholder_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("README", "the sandbox runs the handlers from the checkout, in process\n")
    return out.getvalue()


def _apply_what_moto_drops(stack: Stack, cfn: dict) -> None:
    """Versioning, Object Lock and EventBridge notifications, which moto's CloudFormation ignores."""
    s3 = stack.client("s3")
    for name in ("UploadBucketName", "QuarantineBucketName", "ArtifactsBucketName"):
        s3.put_bucket_versioning(Bucket=stack.outputs[name], VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=stack.outputs["UploadBucketName"], NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    retention = cfn["Resources"]["QuarantineBucket"]["Properties"]["ObjectLockConfiguration"]["Rule"][
        "DefaultRetention"
    ]

    def value(node: Any) -> str:  # a literal or a !Ref to a parameter, as deployed
        if not isinstance(node, dict):
            return str(node)
        name = node["Ref"]
        return str(stack.parameters.get(name, cfn["Parameters"][name].get("Default")))

    s3.put_object_lock_configuration(
        Bucket=stack.outputs["QuarantineBucketName"],
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": value(retention["Mode"]), "Days": int(value(retention["Days"]))}},
        },
    )


class LambdaContext:
    """The context object the Lambda runtime passes to a handler; its clock starts when it is made and
    runs out after `timeout_seconds` (the functions' Timeout is at most 900 s)."""

    def __init__(self, function_name: str, timeout_seconds: float = 900):
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 2048
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "sandbox"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(stack: Stack, function: str, folder: str):
    """Import functions/<folder>/app.py with the deployed function's environment, as Lambda would."""
    os.environ.update(stack.environment(function))
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "1")
    name = f"hashcheck_function_{folder}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / folder / "app.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"functions/{folder}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with acting_as(function):  # the calls a cold start makes are the function's too
        spec.loader.exec_module(module)
    handler = module.handler

    @functools.wraps(handler)
    def as_the_function(event: Any, context: Any) -> Any:
        with acting_as(function):
            return handler(event, context)

    setattr(module, "handler", as_the_function)  # noqa: B010 - the module has no type mypy knows
    return module


def stream_records(stack: Stack, table: str = "FingerprintTableName") -> list[dict]:
    """What a table's stream would hand its function: every item (of the table the output `table`
    names) as an INSERT record. moto serves no stream reads; the sandbox's callers hand these over."""
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.outputs[table])
    items = [item for page in pages for item in page["Items"]]
    return [{"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"NewImage": i}} for i in items]


def deliver(
    stack: Stack, queue_url: str, handler, function: str, max_batches: int = 1000, timeout_seconds: float = 900
) -> list[dict]:
    """Receive the queue's messages in batches of 10 and hand each batch to `handler` as an SQS event,
    with `timeout_seconds` left on its clock; delete what it processed and leave its reported failures
    for redelivery. Returns the responses."""
    sqs = stack.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    responses = []
    for _ in range(max_batches):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        if not messages:
            break
        event = {"Records": [_sqs_record(m, arn) for m in messages]}
        try:
            response = handler(event, LambdaContext(stack.functions[function], timeout_seconds))
        except Exception as exc:  # a function error: Lambda returns the whole batch to the queue
            response = {
                "batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages],
                "functionError": type(exc).__name__,
            }
        responses.append(response)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return responses


def _sqs_record(message: dict, queue_arn: str) -> dict:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
