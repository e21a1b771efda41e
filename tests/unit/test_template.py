"""template.yaml, read as CloudFormation: least privilege and the protections the README promises."""

import json

import pytest

from tests.helpers import RESOURCES, TEMPLATE, actions, statements


def test_no_allow_statement_grants_wildcard_actions():
    granted = [(name, a) for name, s in statements() if s["Effect"] == "Allow" for a in actions(s)]
    assert granted, "the template grants nothing? the parser missed the policies"
    assert [(n, a) for n, a in granted if a == "*" or a.endswith(":*") or "*" in a] == []


@pytest.mark.parametrize("bucket", ["UploadBucket", "QuarantineBucket", "ArtifactsBucket"])
def test_buckets_block_public_access_and_refuse_plain_http(bucket):
    block = RESOURCES[bucket]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(
        block[k] is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    policy = next(
        r
        for r in RESOURCES.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    tls = [s for s in statements if s.get("Sid") in ("TlsOnly", "HashcheckTlsOnly")]
    assert tls and tls[0]["Effect"] == "Deny" and tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_evidence_bucket_is_locked_versioned_encrypted_and_retained():
    props = RESOURCES["QuarantineBucket"]["Properties"]
    assert props["ObjectLockEnabled"] is True and props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"] == {"Ref": "EvidenceRetentionDays"}
    assert TEMPLATE["Parameters"]["EvidenceRetentionDays"]["MinValue"] >= 365
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms"
    assert RESOURCES["QuarantineBucket"]["DeletionPolicy"] == "Retain"


def test_upload_bucket_policy_blocks_every_status_but_clean_and_tag_tampering():
    policy = RESOURCES["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in policy if "Sid" in s}
    blocked = by_sid["HashcheckBlockedIsUnreadable"]
    assert blocked["Effect"] == "Deny" and "s3:GetObject" in blocked["Action"]
    condition, with_opaque, without = blocked["Condition"]["StringEquals"]["s3:ExistingObjectTag/hashcheck-status"][
        "Fn::If"
    ]
    assert set(without) == {"quarantined", "error", "unscannable", "review", "pending"}
    assert (condition, set(with_opaque)) == ("BlockOpaque", {*without, "opaque"})
    for sid in ("HashcheckOnlyTheScannerChangesTags", "HashcheckOnlyTheScannerSetsTheStatusAtUpload"):
        assert by_sid[sid]["Effect"] == "Deny"
        allowed = by_sid[sid]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        roles = {r["Fn::GetAtt"][0] for r in allowed if "Fn::GetAtt" in r}
        assert roles == {"ScanFunctionRole", "RematchFunctionRole", "BackfillFunctionRole", "DeadLetterFunctionRole"}
        reviewer = [r["Fn::Sub"] for r in allowed if "Fn::Sub" in r]
        assert reviewer == ["arn:${AWS::Partition}:iam::${AWS::AccountId}:role/hashcheck-reviewer"]


def test_fail_closed_read_policy_is_an_allow_list_of_clean_objects():
    fail_closed = next(
        s for s in RESOURCES["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"] if "Fn::If" in s
    )
    condition, statement, _ = fail_closed["Fn::If"]
    assert condition == "FailClosed"
    readable = statement["Condition"]["StringNotEquals"]["s3:ExistingObjectTag/hashcheck-status"]
    assert readable == {"Fn::If": ["BlockOpaque", ["clean", "released"], ["clean", "released", "opaque"]]}


def test_every_undelivered_scan_reaches_the_dead_letter_queue_its_function_judges_and_alarms():
    dlq = {"Fn::GetAtt": ["ScanDLQ", "Arn"]}
    assert RESOURCES["ScanQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == dlq
    (target,) = RESOURCES["ObjectCreatedRule"]["Properties"]["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == dlq  # an event EventBridge cannot deliver is not dropped
    assert RESOURCES["DeadLetterFunction"]["Properties"]["Events"]["DeadLetters"]["Properties"]["Queue"] == dlq
    alarms = {json.dumps(r["Properties"]) for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for metric in ("ObjectsDeadLettered", "ObjectsFoundUnscanned", "Unscannable", "SourcesFailed"):
        assert any(metric in a for a in alarms), metric
    assert any("ScanDLQ" in a for a in alarms) and any("ScanQueue" in a for a in alarms)


def test_scan_function_reports_partial_batch_failures_on_arm64():
    props = RESOURCES["ScanFunction"]["Properties"]
    assert props["Events"]["Queue"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert TEMPLATE["Globals"]["Function"]["Architectures"] == ["arm64"]
    # the queue's own limit: a reserved-concurrency throttle would count receives and dead-letter unscanned
    assert "ReservedConcurrentExecutions" not in props
    assert props["Events"]["Queue"]["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ScanConcurrency"}}


def test_the_fingerprint_function_has_room_and_time_for_what_its_limits_allow():
    """The library's limits hold inside the function: a video spooled whole fits its /tmp, looking
    inside a video or a container ends (unscannable, with the reason) before the function times out,
    and the function answers before its callers give up on it."""
    from hashcheck.fingerprinting.containers import DEFAULT_CONTAINER_LIMITS
    from hashcheck.fingerprinting.video import DEFAULT_VIDEO_LIMITS

    props = RESOURCES["FingerprintFunction"]["Properties"]
    assert props["EphemeralStorage"]["Size"] * 2**20 >= DEFAULT_VIDEO_LIMITS.max_bytes + 512 * 2**20
    spare = 15  # seconds to hand the answer back after looking stops
    assert max(DEFAULT_VIDEO_LIMITS.max_seconds, DEFAULT_CONTAINER_LIMITS.max_seconds) + spare <= props["Timeout"]
    for caller in ("ScanFunction", "BackfillFunction"):
        assert props["Timeout"] < RESOURCES[caller]["Properties"]["Timeout"]


def test_every_function_has_its_errors_alarmed():
    """No function can fail unseen: each one's AWS/Lambda Errors is in the alarm that alerts."""
    functions = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
    alarm = RESOURCES["FunctionErrorsAlarm"]["Properties"]
    # a function that exists only under a condition is watched under the same condition
    metrics = [m["Fn::If"][1] if "Fn::If" in m else m for m in alarm["Metrics"]]
    watched = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for m in metrics
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "Errors"
    }
    assert watched == functions
    assert [m["Expression"] for m in metrics if "Expression" in m] == ["SUM(METRICS())"]
    conditional = {
        m["Fn::If"][1]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]: m["Fn::If"][0]
        for m in alarm["Metrics"]
        if "Fn::If" in m
    }
    assert conditional == {f: RESOURCES[f]["Condition"] for f in functions if "Condition" in RESOURCES[f]}
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_a_sync_that_stops_finishing_raises_an_alarm_when_its_metric_goes_missing():
    """A feed that trickles ends at its deadline (the source fails: ListSyncFailedAlarm); a sync that
    never finishes emits nothing at all, so its heartbeat's absence is what alarms."""
    alarm = RESOURCES["ListSyncSilentAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["TreatMissingData"]) == (
        "SyncDuration",
        "SampleCount",
        "breaching",
    )
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    schedule = TEMPLATE["Parameters"]["SyncSchedule"]["Default"]
    assert schedule == "rate(15 minutes)" and alarm["Period"] >= 4 * 15 * 60  # four runs missed, not one


def test_each_list_source_that_keeps_failing_is_alarmed_by_name():
    """The sync emits SourceSynced under each source's name; one alarm holds every source as its own
    contributor, so a source failing every run of an hour is named, whatever the others do."""
    alarm = RESOURCES["ListSourceAlarm"]["Properties"]
    (query,) = alarm["Metrics"]
    assert query["Expression"] == "SELECT MAX(SourceSynced) FROM SCHEMA(HashCheck, service, source) GROUP BY source"
    assert query["Period"] == 3600 and alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert (env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]) == ("HashCheck", "hashcheck")
