"""Known-benign lists: files that must never act, whatever another list says about them."""

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists.build import references_for
from hashcheck.matching.matcher import Policy, match
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.tools import samples
from hashcheck.tools.wrappers import zipped

DEFAULT_IMAGE = samples.jpeg(samples.picture(31))  # a CMS's default image, listed by mistake
LISTED = samples.jpeg(samples.picture(32))
BENIGN = Policy(benign_lists=frozenset({"cms-defaults"}))


def store(vouch: str = "sha256") -> MemoryStore:
    """The default image wrongly listed; the hoster's benign list vouching for it by the SHA-256 of
    the same bytes, or by the PDQ of a re-encoded copy."""
    wrong = references_for(fingerprint(DEFAULT_IMAGE), "feed", "wrong-1")
    listed = references_for(fingerprint(LISTED), "feed", "real-1")
    copy = DEFAULT_IMAGE if vouch == "sha256" else samples.EDITS["jpeg-q50"](samples.picture(31))
    vouched = [r for r in references_for(fingerprint(copy), "cms-defaults", "wp-1") if r.algorithm == vouch]
    return MemoryStore(wrong + listed + vouched)


def test_a_file_on_a_known_benign_list_never_acts_and_what_was_set_aside_is_named():
    for vouch in ("sha256", "pdq"):
        result = match(fingerprint(DEFAULT_IMAGE), store(vouch), BENIGN)
        assert result.verdict == "clean" and result.matches == [], vouch
        assert {(m.list, m.ref_id) for m in result.skipped} == {("feed", "wrong-1")}
        assert {(m.list, m.ref_id, m.algorithm) for m in result.benign} == {("cms-defaults", "wp-1", vouch)}


def test_without_naming_the_list_benign_it_is_a_list_like_any_other():
    assert match(fingerprint(DEFAULT_IMAGE), store()).verdict == "match"


def test_only_the_vouched_member_is_set_aside_inside_an_archive():
    archive = fingerprint(zipped({"wp-content/default.jpg": DEFAULT_IMAGE, "photos/x.jpg": LISTED}))
    result = match(archive, store(), BENIGN)
    assert result.verdict == "match"
    assert {m.member for m in result.matches} == {"photos/x.jpg"}
    assert {m.member for m in result.skipped} == {"wp-content/default.jpg"}


def test_a_listed_picture_is_not_vouched_for_by_an_unrelated_benign_file():
    result = match(fingerprint(LISTED), store(), BENIGN)
    assert result.verdict == "match" and result.skipped == [] and result.benign == []
