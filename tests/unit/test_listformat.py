import io

import pytest

from hashcheck.lists import listformat
from hashcheck.lists.listformat import ListFormatError, Reference, Rejected

MD5 = "0" * 31 + "1"
PDQ = "f" * 64


def rows(text: str) -> list:
    return list(listformat.read_text(text))


def test_jsonl_rows_parse_and_normalise():
    text = (
        f'{{"algorithm": "MD5", "hash": "{MD5.upper()}", "list": "nl", "id": "r1", "category": "A1"}}\n'
        f'{{"algorithm": "pdq", "hash": "{PDQ}", "list": "nl", "id": "r2", "deleted": true}}\n'
    )
    assert rows(text) == [
        Reference("md5", MD5, "nl", "r1", "A1", False),
        Reference("pdq", PDQ, "nl", "r2", None, True),
    ]


def test_csv_with_same_columns_and_line_numbers():
    text = (
        "algorithm,hash,list,id,category,deleted\n"
        f"md5,{MD5},nl,r1,,false\n"
        "\n"
        "sha1,abc,nl,r2,,\n"  # too short
        f"phash,{'a' * 16},nl,r3,B,true\n"
        f"md5,{MD5},nl\n"  # wrong column count
    )
    got = rows(text)
    assert got[0] == Reference("md5", MD5, "nl", "r1")
    assert got[1] == Rejected(4, "sha1 must have 40 hex digits, not 3")
    assert got[2] == Reference("phash", "a" * 16, "nl", "r3", "B", True)
    assert got[3] == Rejected(6, "expected 6 columns, found 3")


@pytest.mark.parametrize(
    "line, reason",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "row is not an object"),
        ('{"algorithm": "md5", "hash": "zz", "list": "l", "id": "i"}', "md5 is not hex"),
        ('{"algorithm": "md5", "list": "l", "id": "i"}', "missing hash"),
        (f'{{"algorithm": "md5", "hash": "{MD5}", "id": "i"}}', "missing list"),
        (f'{{"algorithm": "md5", "hash": "{MD5}", "list": "l", "id": "i", "deleted": "maybe"}}', "deleted must"),
        (f'{{"algorithm": "bad name!", "hash": "{MD5}", "list": "l", "id": "i"}}', "algorithm name"),
        (f'{{"algorithm": "md5", "hash": "{MD5}", "list": "l", "id": "{"x" * 300}"}}', "id must be"),
    ],
)
def test_malformed_jsonl_rows_are_rejected_with_their_line_number(line, reason):
    got = rows("\n" + f'{{"algorithm": "md5", "hash": "{MD5}", "list": "l", "id": "ok"}}\n' + line + "\n")
    assert isinstance(got[0], Reference)
    assert isinstance(got[1], Rejected) and got[1].line == 3 and reason in got[1].reason


def test_rejection_reasons_never_quote_the_hash():
    secret = "deadbeef" * 5  # 40 digits: wrong length for md5
    (rejected,) = rows(f'{{"algorithm": "md5", "hash": "{secret}", "list": "l", "id": "i"}}\n')
    assert isinstance(rejected, Rejected) and secret not in rejected.reason


def test_unknown_algorithms_are_kept_for_storage():
    (row,) = rows(f'{{"algorithm": "photodna", "hash": "{"ab" * 144}", "list": "l", "id": "i"}}\n')
    assert row.algorithm == "photodna" and len(row.hash) == 288


def test_csv_without_v1_header_is_a_format_error():
    with pytest.raises(ListFormatError):
        rows("hash;type\nabc;md5\n")


def test_write_then_read_round_trips():
    refs = [Reference("md5", MD5, "l", "a"), Reference("pdq", PDQ, "l", "b", "cat", True)]
    out = io.StringIO()
    assert listformat.write(refs, out) == 2
    assert rows(out.getvalue()) == refs
