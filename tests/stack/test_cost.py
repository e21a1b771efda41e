"""bench/cost.py's counts: a clean upload makes exactly the requests the README's cost table prices."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from hashcheck.tools import samples

_spec = importlib.util.spec_from_file_location(
    "hashcheck_bench_cost", Path(__file__).resolve().parents[2] / "bench" / "cost.py"
)
assert _spec is not None and _spec.loader is not None
cost = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cost  # its dataclasses look their module up
_spec.loader.exec_module(cost)

CLEAN_UPLOAD = {
    ("FingerprintFunction", "s3", "GetObject"): 1,  # the one read of the object
    ("ScanFunction", "lambda", "Invoke"): 1,  # FingerprintFunction, for that read
    ("ScanFunction", "dynamodb", "BatchGetItem"): 1,  # its exact hashes against the lists
    ("ScanFunction", "dynamodb", "PutItem"): 1,  # its FingerprintTable record
}  # no tag lookup: the read said it carries no tags, so no status of ours to write clean over


def one_of_each() -> dict[str, list[tuple[str, bytes]]]:
    whole = samples.jpeg(samples.picture(77))
    return {
        "clean": [("customers/1/photo.jpg", cost.photo(1001, (1920, 1080)))],
        "not_image": [("customers/1/notes.txt", b"shopping list\n")],
        "unscannable": [("customers/1/cut.jpg", whole[: len(whole) // 3])],
        "match": [("customers/1/listed.jpg", samples.jpeg(samples.picture(1)))],
    }


@pytest.fixture(scope="module")
def runs():
    mix = one_of_each()
    return {mode: cost.run_mode(mode == "fail-closed", mix) for mode in ("default", "fail-closed")}


def test_a_clean_upload_makes_exactly_the_requests_the_cost_table_prices(runs):
    assert dict(runs["default"].per_kind["clean"].requests) == CLEAN_UPLOAD
    tagged = dict(runs["fail-closed"].per_kind["clean"].requests)
    clean_tag = {("ScanFunction", "s3", "GetObjectTagging"): 1, ("ScanFunction", "s3", "PutObjectTagging"): 1}
    assert tagged == {**CLEAN_UPLOAD, **clean_tag}  # the clean tag, merged into the customer's


def test_a_clean_upload_with_tags_of_its_own_has_them_looked_up(runs):
    """A version that carries tags (the customer's, or a status of ours from an earlier scan) is looked
    up, so that a clean verdict replaces a blocking status of ours."""
    tagged = cost.run_mode(False, {"clean": [("customers/1/photo.jpg", cost.photo(1001, (1920, 1080)))]}, tags="team=a")
    assert dict(tagged.per_kind["clean"].requests) == {**CLEAN_UPLOAD, ("ScanFunction", "s3", "GetObjectTagging"): 1}


def test_dynamodb_units_count_the_indexes_a_write_feeds(runs):
    clean = runs["default"].per_kind["clean"]
    fingerprints = {t: u for (_, t), u in clean.wru.items() if "FingerprintTable" in t}
    (units,) = fingerprints.values()
    assert units == 1  # a record under 1 KB, and no index of the table to feed
    assert sum(clean.rru.values()) == 1.5  # three keys, eventually consistent


def test_a_match_costs_more_than_a_clean_upload_and_is_priced_in_every_component(runs):
    run = runs["default"]
    prices = cost.PRICES["regions"]["eu-west-1"]
    clean = sum(cost.priced(run.per_kind["clean"], run.memory, prices, 1).values())
    match = cost.priced(run.per_kind["match"], run.memory, prices, 1)
    assert sum(match.values()) > 2 * clean
    assert match["sns, eventbridge, kms"] > 0 and match["s3 requests"] > 0  # alert, events, evidence copy
