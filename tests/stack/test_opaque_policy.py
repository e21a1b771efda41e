"""`BlockOpaqueObjects=true`: objects holding an encrypted archive are unreadable like unscannable ones,
in both read modes, and `hashcheck protect` puts the same rule on existing buckets. (Its own module:
each case deploys its own stack, apart from test_access's module-wide one.)"""

from __future__ import annotations

import pytest
from moto import mock_aws

from hashcheck.tools import protect, sandbox
from tests.iam.stack import StackPolicies
from tests.stack.test_access import allowed, app_role, status_context


@pytest.mark.parametrize("fail_closed", ["false", "true"])
def test_a_hoster_can_block_opaque_objects(fail_closed):
    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy({"BlockOpaqueObjects": "true", "FailClosedReadPolicy": fail_closed})
        policies = StackPolicies.of(stack)
        bucket = policies.arns["UploadBucket"]
        policies.principals["hoster's app"] = app_role(bucket)
        assert not allowed(policies, "hoster's app", "s3:GetObject", "x.jpg", status_context("opaque"))
        assert allowed(policies, "hoster's app", "s3:GetObject", "x.jpg", status_context("clean"))
        generated = protect.bucket_statements(
            policies.names["UploadBucket"],
            stack.outputs["ScannerRoleArns"].split(","),
            policies.principals["reviewer"].arn,
            fail_closed == "true",
            readers=[stack.outputs["FingerprintRoleArn"]],
            block_opaque=True,
        )
        assert policies.resource_policy(bucket)["Statement"] == generated
