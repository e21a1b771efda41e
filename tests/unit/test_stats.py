"""Transparency figures from records and cases: months, lists, tenants, and the since filter."""

from hashcheck.tools.stats import as_text, figures

RECORDS = [
    {"scanned_at": "2026-10-03T10:00:00+00:00", "status": "clean", "tenant": "acme"},
    {"scanned_at": "2026-10-04T10:00:00+00:00", "status": "quarantined", "tenant": "acme"},
    {"scanned_at": "2026-11-01T00:00:00+00:00", "status": "review", "tenant": "bolt"},
    {"scanned_at": "2026-11-02T00:00:00+00:00", "status": "unscannable"},
]
CASES = [
    {
        "detected_at": "2026-10-04T10:00:00+00:00",
        "lists": ["nl", "us"],
        "status": "quarantined",
        "verdict": "match",
        "decision": "confirmed",
        "reported_at": "2026-10-05",
        "tenant": "acme",
    },
    {
        "detected_at": "2026-11-01T00:00:00+00:00",
        "lists": ["nl"],
        "status": "open",
        "verdict": "review",
        "tenant": "bolt",
    },
]


def test_figures_count_per_month_list_and_tenant():
    found = figures(RECORDS, CASES).to_dict()
    assert found["months"]["2026-10"]["scanned"] == 2 and found["months"]["2026-11"]["unscannable"] == 1
    assert found["lists"]["nl"]["2026-10"] == {
        "matched": 1,
        "quarantined": 1,
        "held": 0,
        "released": 0,
        "confirmed": 1,
        "reported": 1,
    }
    assert found["lists"]["nl"]["2026-11"]["held"] == 1 and "2026-11" not in found["lists"]["us"]
    assert found["tenants"]["acme"] == {
        "scanned": 2,
        "clean": 1,
        "quarantined": 1,
        "case_matched": 1,
        "case_quarantined": 1,
        "case_confirmed": 1,
        "case_reported": 1,
    }
    assert found["tenants"]["bolt"]["case_held"] == 1


def test_since_leaves_out_what_came_before_and_the_text_shows_no_hash_or_key():
    found = figures(RECORDS, CASES, since="2026-11-01")
    assert set(found.months) == {"2026-11"} and set(found.lists) == {"nl"}
    text = as_text(found)
    assert "since 2026-11-01" in text and "bolt" in text and "acme" not in text
