"""`hashcheck list build` then `hashcheck scan`: the local path, end to end through the real CLI."""

import io
import json
from dataclasses import replace

import pytest
from PIL import Image, ImageEnhance, ImageOps

from hashcheck.fingerprinting.fingerprint import NearHash, fingerprint
from hashcheck.lists.listformat import Reference
from hashcheck.matching.matcher import Policy, match
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.tools.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scan_rows(out: str) -> dict[str, dict]:
    return {row["path"].rsplit("/", 1)[-1]: row for row in map(json.loads, out.splitlines())}


@pytest.fixture()
def listed(tmp_path, photos, capsys):
    """A list built from five photos, and edited copies of them plus five unlisted photos to scan."""
    originals, unlisted = photos[:5], photos[5:]
    list_file = tmp_path / "list.jsonl"
    code, _, err = run(capsys, "list", "build", *map(str, originals), "--list-id", "test-list", "-o", str(list_file))
    rows = len(list_file.read_text().splitlines())  # 5 per photo, 2 more for each with a uniform border
    assert code == 0 and f"wrote {rows} rows for 5 files" in err and rows >= 25
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for i, photo in enumerate(originals):
        image = Image.open(photo)
        image.save(uploads / f"{photo.stem}-q50.jpg", quality=50)
        image.resize((image.width // 2, image.height // 2)).save(uploads / f"{photo.stem}-half.png")
        ImageOps.mirror(image).save(uploads / f"{photo.stem}-mirror.jpg", quality=85)
        if i == 0:
            ImageEnhance.Brightness(image).enhance(1.2).save(uploads / f"{photo.stem}-bright.webp")
    for photo in unlisted:
        (uploads / photo.name).write_bytes(photo.read_bytes())
    (uploads / "sub").mkdir()
    (uploads / "sub" / "notes.txt").write_text("hello")
    return list_file, uploads, originals


def test_list_build_rows_name_the_source_image(listed):
    list_file, _, originals = listed
    rows = [json.loads(line) for line in list_file.read_text().splitlines()]
    assert {r["algorithm"] for r in rows} == {"md5", "sha1", "sha256", "pdq", "phash"}
    assert {r["id"] for r in rows} == {p.stem for p in originals}
    assert all(r["list"] == "test-list" and r["deleted"] is False for r in rows)


def test_scan_finds_edited_copies_and_nothing_else(listed, capsys):
    list_file, uploads, originals = listed
    code, out, _ = run(capsys, "scan", str(uploads), "--refs", str(list_file), "--json")
    assert code == 0
    rows = scan_rows(out)
    for photo in originals:
        for suffix in ("q50.jpg", "half.png", "mirror.jpg"):
            row = rows[f"{photo.stem}-{suffix}"]
            assert row["verdict"] == "match", row
            assert {m["ref_id"] for m in row["matches"]} == {photo.stem}
    assert rows[f"{originals[0].stem}-bright.webp"]["verdict"] == "match"
    mirrored = rows[f"{originals[0].stem}-mirror.jpg"]["matches"]
    assert any(m["variant"] == "flip_x" for m in mirrored)
    unlisted = [name for name, row in rows.items() if name.startswith("wall-") and "-" not in name[5:]]
    assert len(unlisted) == 5 and all(rows[n] == {**rows[n], "verdict": "clean", "matches": []} for n in unlisted)
    assert rows["notes.txt"]["status"] == "not_image" and rows["notes.txt"]["verdict"] == "clean"


def test_exact_copy_matches_by_every_hash(listed, capsys):
    list_file, _, originals = listed
    code, out, _ = run(capsys, "scan", str(originals[0]), "--refs", str(list_file), "--json")
    (row,) = scan_rows(out).values()
    assert {m["algorithm"] for m in row["matches"]} == {"md5", "sha1", "sha256", "pdq", "phash"}
    assert all(m["distance"] == 0 for m in row["matches"])


def test_tombstone_withdraws_a_reference(listed, capsys):
    list_file, uploads, originals = listed
    stem = originals[1].stem
    withdrawn = [json.loads(line) for line in list_file.read_text().splitlines() if f'"{stem}"' in line]
    with list_file.open("a") as f:
        for row in withdrawn:
            f.write(json.dumps({**row, "deleted": True}) + "\n")
    code, out, _ = run(capsys, "scan", str(uploads / f"{stem}-q50.jpg"), "--refs", str(list_file), "--json")
    assert code == 0 and next(iter(scan_rows(out).values()))["verdict"] == "clean"


def test_bad_list_file_exits_2_naming_the_line(tmp_path, photos, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"algorithm": "md5", "hash": "' + "0" * 32 + '", "list": "l", "id": "a"}\n{"algorithm": "md5"}\n')
    code, out, err = run(capsys, "scan", str(photos[0]), "--refs", str(bad))
    assert code == 2 and "line 2" in err and out == ""
    code, _, err = run(capsys, "scan", str(photos[0]), "--refs", str(tmp_path / "missing.jsonl"))
    assert code == 2


def test_missing_path_and_bad_arguments_exit_2(tmp_path, capsys):
    assert run(capsys, "fingerprint", str(tmp_path / "nope.jpg"))[0] == 2
    with pytest.raises(SystemExit) as exited:
        main(["scan", str(tmp_path)])  # --refs missing
    assert exited.value.code == 2


def test_fingerprint_cli_prints_contract_fields(photos, capsys):
    code, out, _ = run(capsys, "fingerprint", str(photos[0]), "--json")
    row = json.loads(out)
    assert code == 0
    assert {"path", "status", "size", "md5", "sha1", "sha256", "pdq", "pdq_quality", "phash"} <= row.keys()


def _store_with(pdq: str, phash: str) -> MemoryStore:
    return MemoryStore([Reference("pdq", pdq, "l", "img"), Reference("phash", phash, "l", "img")])


def test_a_phash_hit_acts_reviews_or_drops_by_how_far_the_listed_pdq_is(photos):
    fp = fingerprint(photos[0].read_bytes())
    fp.near = [h for h in fp.near if h.variant == "original"]  # one PDQ, so its distance is the one we set

    def listed_pdq_at(distance: int) -> str:
        return f"{int(fp.pdq, 16) ^ ((1 << distance) - 1):064x}"  # the lowest `distance` bits flipped

    policy = Policy()
    verdict = {d: match(fp, _store_with(listed_pdq_at(d), fp.phash)).verdict for d in (0, 64, 65, 70, 71, 120)}
    assert policy.phash_confirm_pdq == 64 and policy.phash_review_pdq == 70
    assert verdict == {0: "match", 64: "match", 65: "review", 70: "review", 71: "clean", 120: "clean"}


def test_a_phash_hit_is_confirmed_only_by_the_pdq_of_the_same_view(photos):
    """The pHash of the upload as it is hits; a tilted view's PDQ is near the listed PDQ, its own is not.
    Pixels that differ cannot confirm each other: nothing acts. A view whose PDQ was dropped as a repeat
    of another view's (a symmetric picture) is confirmed by its frame's PDQ."""
    fp = fingerprint(photos[0].read_bytes())
    by_view = {(h.algorithm, h.variant): h for h in fp.near}
    listed = f"{int(fp.pdq, 16) ^ ((1 << 100) - 1):064x}"  # 100 bits from the upload's own PDQ
    tilted = replace(by_view[("pdq", "tilt+2")], hash=f"{int(listed, 16) ^ ((1 << 40) - 1):064x}")  # 40 from it
    far_phash = replace(by_view[("phash", "tilt+2")], hash=f"{int(fp.phash, 16) ^ ((1 << 30) - 1):016x}")
    fp.near = [by_view[("pdq", "original")], by_view[("phash", "original")], tilted, far_phash]
    assert match(fp, _store_with(listed, fp.phash)).verdict == "clean"
    fp.near = [by_view[("phash", "original")], tilted, far_phash]  # the original's PDQ a repeat of the tilt's
    assert match(fp, _store_with(listed, fp.phash)).verdict == "match"


def test_a_phash_hit_on_a_listing_without_pdq_is_reviewed(photos):
    fp = fingerprint(photos[0].read_bytes())
    assert match(fp, MemoryStore([Reference("phash", fp.phash, "l", "img")])).verdict == "review"


def test_a_phash_hit_through_many_variants_looks_up_the_listed_image_once(photos):
    class CountingStore(MemoryStore):  # the real store, counting its round trips for siblings
        sibling_lookups = 0

        def siblings(self, reference):
            CountingStore.sibling_lookups += 1
            return super().siblings(reference)

    fp = fingerprint(photos[0].read_bytes())
    far_pdq = f"{int(fp.pdq, 16) ^ ((1 << 80) - 1):064x}"  # no PDQ hit of its own
    store = CountingStore([Reference("pdq", far_pdq, "l", "img"), Reference("phash", fp.phash, "l", "img")])
    variants_hitting = [h for h in fp.near if h.algorithm == "phash" and store.near("phash", [h.hash], 8)]
    assert len(variants_hitting) > 1  # the original and some tilts
    match(fp, store)
    assert CountingStore.sibling_lookups == 1


def test_low_quality_pdq_never_acts(photos):
    fp = fingerprint(photos[0].read_bytes())
    fp.near = [NearHash(h.algorithm, h.hash, 10, h.variant) for h in fp.near if h.algorithm == "pdq"]
    store = MemoryStore([Reference("pdq", fp.pdq, "l", "img")])
    assert match(fp, store).verdict == "clean"
    assert match(fp, store, Policy(pdq_min_quality=0)).verdict == "match"


def test_per_list_thresholds_hold_one_list_tighter(photos):
    """A hit at distance d acts for a list whose threshold is >= d, not for one held tighter."""
    from PIL import Image

    buf = io.BytesIO()
    image = Image.open(photos[0])
    image.crop((8, 8, image.width - 8, image.height - 8)).resize((256, 160)).save(buf, "JPEG", quality=20)
    fp = fingerprint(buf.getvalue())
    original = fingerprint(photos[0].read_bytes())
    distance = min(m.distance for m in match(fp, MemoryStore([Reference("pdq", original.pdq, "a", "x")])).matches)
    assert 0 < distance <= 31
    store = MemoryStore([Reference("pdq", original.pdq, "loose", "x"), Reference("pdq", original.pdq, "tight", "x")])
    policy = Policy(per_list={"tight": {"pdq": distance - 1}, "loose": {"pdq": distance}})
    assert {m.list for m in match(fp, store, policy).matches} == {"loose"}
    assert Policy(per_list={"wide": {"pdq": 40}}).search_radius("pdq") == 40


def test_a_video_through_the_cli_fingerprint_list_build_and_scan(tmp_path, capsys):
    """`fingerprint --json` of a video carries its vPDQ signal and frame count, and a row per scene;
    `list build` lists it by vPDQ; `scan` finds a re-encoded copy and a listed photo shown in a clip."""
    from hashcheck.fingerprinting.vpdq import from_signal
    from hashcheck.tools import samples

    listed, photo = tmp_path / "listed.mp4", tmp_path / "photo.jpg"
    listed.write_bytes(samples.video(8, seed=20, size=(320, 240)))
    photo.write_bytes(samples.jpeg(samples.picture(501)))
    code, out, _ = run(capsys, "fingerprint", str(listed), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows[0]["status"] == "video" and rows[0]["frames"] == 8
    assert len(from_signal(rows[0]["vpdq"])) == 8
    assert all(r["path"].startswith(f"{listed}!t=") and r["status"] == "image" for r in rows[1:])

    list_file = tmp_path / "list.jsonl"
    code, _, _ = run(capsys, "list", "build", str(listed), str(photo), "--list-id", "l", "-o", str(list_file))
    assert code == 0 and "vpdq" in {json.loads(line)["algorithm"] for line in list_file.read_text().splitlines()}
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "copy.mp4").write_bytes(samples.video(8, seed=20, size=(240, 180), crf=35))
    (uploads / "shown.webm").write_bytes(
        samples.video(9, size=(320, 240), show=(samples.picture(501), 3.0, 6.0), format="matroska")
    )
    (uploads / "other.mp4").write_bytes(samples.video(8, seed=70, size=(320, 240)))
    code, out, _ = run(capsys, "scan", str(uploads), "--refs", str(list_file), "--json")
    found = scan_rows(out)
    assert code == 0 and found["other.mp4"]["verdict"] == "clean"
    assert {(m["algorithm"], m["ref_id"], m["member"]) for m in found["copy.mp4"]["matches"]} == {
        ("vpdq", "listed", "t=0.0-8.0s")
    }
    assert found["shown.webm"]["verdict"] == "match"
    assert {(m["ref_id"], m["member"]) for m in found["shown.webm"]["matches"]} == {("photo", "t=3.0-6.0s")}
