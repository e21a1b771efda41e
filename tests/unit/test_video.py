"""Videos: frames sampled and hashed as Meta's reference vPDQ does, the signal lists exchange, and the
vPDQ match rule. Benign videos generated here with PyAV (moving colour fields); pdqhash, Meta's PDQ,
is the oracle for every frame's hash."""

from __future__ import annotations

import io
import json

import numpy as np
import pdqhash
import pytest
from PIL import ImageOps

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.fingerprinting.imaging import Limits
from hashcheck.fingerprinting.video import VideoLimits, VideoRejected, looks_like_video, sampled_frames, vpdq_features
from hashcheck.fingerprinting.vpdq import Feature, from_signal, to_signal
from hashcheck.lists.build import references_for
from hashcheck.lists.listformat import read, to_json
from hashcheck.matching.matcher import Policy, match
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.matching.videomatch import VideoRule, compare
from hashcheck.tools import samples
from hashcheck.tools.wrappers import zipped


def video(seconds: float, **options) -> bytes:
    return samples.video(seconds, **options)


CLIP = video(10)


def test_frames_are_sampled_as_the_reference_samples_them():
    stamps = [t for t, _ in sampled_frames(io.BytesIO(CLIP))]
    assert stamps == [float(s) for s in range(10)]  # 25 fps: every 25th frame, index / rate
    ntsc = [t for t, _ in sampled_frames(io.BytesIO(video(3, fps=30000 / 1001)))]
    assert ntsc == pytest.approx([n * 29 * 1001 / 30000 for n in range(4)])  # step int(29.97) = 29


STREAMS_WITH_FRAMES_NOTHING_IS_PREDICTED_FROM = {
    "h264 b-pyramid mkv": {"format": "matroska", "options": {"bf": "3", "x264-params": "b-pyramid=strict"}},
    "hevc mp4": {"codec": "libx265", "options": {"x265-params": "log-level=error:bframes=8:b-pyramid=1"}},
    "vp9 webm": {"codec": "libvpx-vp9", "format": "webm", "options": {"auto-alt-ref": "1", "lag-in-frames": "16"}},
    "mpeg-4 avi": {"codec": "mpeg4", "format": "avi", "options": {"bf": "2"}},
    "mpeg-2 ts": {"codec": "mpeg2video", "format": "mpegts", "options": {"bf": "2"}},
    "raw h264, no packet times": {"format": "h264", "options": {"bf": "3"}},
}


@pytest.mark.parametrize("name", STREAMS_WITH_FRAMES_NOTHING_IS_PREDICTED_FROM)
def test_skipping_unsampled_frames_samples_exactly_what_decoding_every_frame_does(name):
    """Frames no other is predicted from are not decoded unless sampled: the sampled frames, pixel for
    pixel and timestamp for timestamp, are those of decoding every frame and counting (PyAV, the oracle)."""
    import av

    data = video(6, seed=3, size=(160, 96), **STREAMS_WITH_FRAMES_NOTHING_IS_PREDICTED_FROM[name])
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        every = [(float(i / rate), f.to_ndarray(format="rgb24")) for i, f in enumerate(container.decode(stream))]
    expected = every[:: max(1, int(rate))]
    ours = list(sampled_frames(io.BytesIO(data)))
    assert [t for t, _ in ours] == [t for t, _ in expected] and len(expected) == 6
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ours, expected, strict=True))


def test_each_frame_hash_is_meta_pdq_of_the_same_frame():
    for (timestamp, rgb), feature in zip(
        sampled_frames(io.BytesIO(CLIP)), vpdq_features(io.BytesIO(CLIP)), strict=True
    ):
        vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
        expected = f"{int(''.join(str(int(b)) for b in vector), 2):064x}"  # the first bit most significant
        assert (feature.pdq, feature.quality, feature.timestamp) == (expected, quality, timestamp)


def test_the_signal_is_threatexchanges_and_reads_back():
    features = [Feature("ab" * 32, 100, 0.0), Feature("cd" * 32, 77, 1.9353), Feature("ef" * 32, 50, 123.4)]
    signal = to_signal(features)
    assert json.loads(signal) == [f"{'ab' * 32},100,0.0", f"{'cd' * 32},77,1.94", f"{'ef' * 32},50,1.23e+02"]
    assert from_signal(signal) == [
        Feature("ab" * 32, 100, 0.0),
        Feature("cd" * 32, 77, 1.94),
        Feature("ef" * 32, 50, 123.0),
    ]
    assert from_signal("") == []
    for bad in ("{", '{"a": 1}', '["ab,1"]', f'["{"zz" * 32},1,0"]'):
        with pytest.raises(ValueError, match="vpdq"):
            from_signal(bad)


def test_a_re_encoded_copy_matches_and_an_unrelated_video_does_not():
    listed = vpdq_features(io.BytesIO(CLIP))
    copy = vpdq_features(io.BytesIO(video(10, crf=35, size=(240, 180))))
    found = compare(copy, listed)
    assert found is not None and found.listed_share >= 0.8 and (found.start, found.end) == (0.0, 9.0)
    assert compare(vpdq_features(io.BytesIO(video(10, seed=7))), listed) is None


def test_mirrored_and_letterboxed_copies_match_by_their_frames_variants():
    """Plain vPDQ (the reference's too) misses both: bench/video.py."""
    from PIL import Image, ImageOps

    def letterboxed(frame):
        canvas = Image.new("RGB", frame.size)
        canvas.paste(frame.resize((frame.width, frame.height * 3 // 4)), (0, frame.height // 8))
        return canvas

    listed = from_signal(to_signal(vpdq_features(io.BytesIO(CLIP))))  # as a list carries it: no variants
    for edit in (ImageOps.mirror, letterboxed):
        copy = vpdq_features(io.BytesIO(video(10, edit=edit)))
        plain = [Feature(f.pdq, f.quality, f.timestamp) for f in copy]
        assert compare(plain, listed) is None and compare(copy, listed) is not None


def test_the_listed_video_inside_a_longer_upload_matches_with_its_time_range():
    listed = vpdq_features(io.BytesIO(video(6, seed=3)))
    other = vpdq_features(io.BytesIO(video(8, seed=9)))
    compilation = other[:4] + [Feature(f.pdq, f.quality, f.timestamp + 4) for f in listed] + other[4:]
    found = compare(compilation, listed)
    assert found is not None and found.listed_share == 1.0 and (found.start, found.end) == (4.0, 9.0)
    half = listed[:3]  # a cut-down copy: half the listed frames, under the default 80%
    assert compare(half, listed) is None
    assert compare(half, listed, VideoRule(listed_share=0.0, query_share=0.8)) is not None


def test_frames_below_the_quality_floor_are_left_out_on_both_sides():
    listed = vpdq_features(io.BytesIO(CLIP))
    flat = [Feature("00" * 32, 0, float(t)) for t in range(20)]  # black frames: quality 0
    assert compare(flat + listed, listed).query_share == 1.0
    assert compare(flat, flat) is None


def test_video_files_are_told_by_their_bytes_and_bad_ones_are_rejected_with_a_reason():
    assert looks_like_video(CLIP[:512])
    assert not looks_like_video(b"\x00\x00\x00\x18ftypheic" + bytes(500))  # a phone photo, not a video
    with pytest.raises(VideoRejected, match="not decodable"):
        vpdq_features(io.BytesIO(CLIP[: len(CLIP) // 3] + b"\x00" * 5000))
    with pytest.raises(VideoRejected, match="more than 3 frames to hash"):
        vpdq_features(io.BytesIO(CLIP), VideoLimits(max_frames_hashed=3))
    with pytest.raises(VideoRejected, match="over the limit"):
        vpdq_features(io.BytesIO(CLIP), VideoLimits(max_frame_pixels=100))


# --- a video on the scan path: its scenes are members, matched against the image lists ----------------

LISTED_PHOTO = samples.picture(501)
SHOWN = video(15, size=(320, 240), show=(LISTED_PHOTO, 6.0, 9.0))  # a listed photo on screen for 3 s


def image_list() -> MemoryStore:
    """The listed photo by its PDQ and pHash, as a hotline lists a picture."""
    refs = references_for(fingerprint(samples.jpeg(LISTED_PHOTO)), "l", "photo")
    return MemoryStore([r for r in refs if r.algorithm in ("pdq", "phash")])


def test_a_listed_photo_shown_for_three_seconds_is_a_match_named_by_its_time_range():
    fp = fingerprint(io.BytesIO(SHOWN))
    assert (fp.status, fp.frames, fp.width, fp.height, fp.partial) == ("video", 15, 320, 240, False)
    assert len(from_signal(fp.as_dict()["vpdq"])) == 15
    result = match(fp, image_list())
    assert result.verdict == "match"
    assert {m.member for m in result.matches} == {"t=6.0-9.0s"}
    assert match(fingerprint(video(15, size=(320, 240))), image_list()).verdict == "clean"


def test_a_zipped_video_is_opened_and_its_scene_named_inside_the_archive():
    result = match(fingerprint(zipped({"clips/holiday.mp4": SHOWN})), image_list())
    assert result.verdict == "match" and {m.member for m in result.matches} == {"clips/holiday.mp4!t=6.0-9.0s"}


def test_a_video_is_spooled_to_a_file_not_held_in_memory():
    """A stream whose video is far over the in-memory decode limit is still looked at whole."""
    fp = fingerprint(io.BytesIO(SHOWN), Limits(max_decode_bytes=64 * 1024))
    assert len(SHOWN) > 64 * 1024 and fp.status == "video" and match(fp, image_list()).verdict == "match"
    assert fingerprint(SHOWN, Limits(max_decode_bytes=64 * 1024)).status == "video"  # bytes: the video limit too
    over = fingerprint(io.BytesIO(SHOWN), videos=VideoLimits(max_bytes=len(SHOWN) - 1))
    assert over.status == "unscannable" and "larger than" in over.error


def _rebranded(mp4: bytes) -> bytes:
    at = mp4.index(b"ftyp") + 4
    return mp4[:at] + b"mp71" + mp4[at + 4 :]  # a brand of its own: players do not care


@pytest.mark.parametrize(
    "wrap",
    {
        "flv": lambda: video(9, size=(320, 240), show=(LISTED_PHOTO, 3.0, 6.0), format="flv"),
        "wmv (asf)": lambda: video(9, size=(320, 240), show=(LISTED_PHOTO, 3.0, 6.0), format="asf"),
        "raw h264 stream": lambda: video(9, size=(320, 240), show=(LISTED_PHOTO, 3.0, 6.0), format="h264"),
        "mp4 with another brand": lambda: _rebranded(video(9, size=(320, 240), show=(LISTED_PHOTO, 3.0, 6.0))),
    }.items(),
    ids=lambda item: item[0],
)
def test_one_step_to_another_container_or_brand_is_still_a_video(wrap):
    """Re-muxing the clip (FLV, WMV, a bare H.264 stream) or renaming its MP4 brand must not make it a
    file we do not look into."""
    _, make = wrap
    fp = fingerprint(io.BytesIO(make()))
    assert fp.status == "video", fp.error
    assert match(fp, image_list()).verdict == "match"


def test_pictures_that_share_a_video_marker_are_still_pictures():
    """An ICO starts 00 00 01 00 and a HEIC is an ISO file: neither is taken for a video."""
    ico, heic = io.BytesIO(), io.BytesIO()
    LISTED_PHOTO.resize((64, 48)).save(ico, "ICO")
    LISTED_PHOTO.save(heic, "HEIF")
    assert not looks_like_video(ico.getvalue()[:512]) and not looks_like_video(heic.getvalue()[:512])
    assert fingerprint(ico.getvalue()).status == fingerprint(heic.getvalue()).status == "image"


def test_a_video_cut_short_is_unscannable_but_what_it_showed_still_matches():
    """Matroska declares its duration up front: frames that end early are a truncated file, not clean."""
    mkv = video(15, size=(320, 240), show=(LISTED_PHOTO, 2.0, 5.0), format="matroska")
    fp = fingerprint(io.BytesIO(mkv[: len(mkv) * 2 // 3]))
    assert fp.status == "video" and fp.partial and "it declares" in fp.error
    assert match(fp, image_list()).verdict == "match"  # the photo at 2-5 s was read
    assert match(fingerprint(io.BytesIO(mkv[: len(mkv) * 2 // 3])), MemoryStore([])).verdict == "unscannable"


def test_a_video_that_takes_too_long_or_cannot_be_read_is_unscannable_with_the_reason():
    slow = fingerprint(io.BytesIO(SHOWN), videos=VideoLimits(max_seconds=0.0))
    assert slow.status == "video" and slow.partial and "one invocation" in slow.error
    assert match(slow, MemoryStore([])).verdict == "unscannable"
    broken = fingerprint(io.BytesIO(SHOWN[: len(SHOWN) // 2]))  # an MP4's index is at its end
    assert broken.status == "unscannable" and "not decodable" in broken.error
    header_only = fingerprint(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(600))
    assert header_only.status == "unscannable"  # says it is a video, shows nothing: not clean
    unknown = video(2, format="matroska").replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC")  # no decoder for it
    nodecoder = fingerprint(io.BytesIO(unknown))
    assert nodecoder.partial and "DecoderNotFound" in nodecoder.error
    assert match(nodecoder, MemoryStore([])).verdict == "unscannable"


def test_sound_only_is_no_picture():
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for _ in range(20):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    fp = fingerprint(out.getvalue())
    assert looks_like_video(out.getvalue()[:512]) and fp.status == "not_image" and fp.error == "no video stream"


# --- listed videos: vpdq rows -------------------------------------------------------------------------


def video_list(*clips: tuple[str, bytes], list_id: str = "l") -> MemoryStore:
    """A list built from videos as `hashcheck list build` builds it: exact hashes and one vpdq row each."""
    return MemoryStore([r for ref_id, clip in clips for r in references_for(fingerprint(clip), list_id, ref_id)])


def test_list_build_gives_a_video_one_vpdq_row_that_reads_back():
    rows = references_for(fingerprint(CLIP), "l", "clip")
    assert [r.algorithm for r in rows] == ["md5", "sha1", "sha256", "vpdq"]
    (row,) = [r for r in rows if r.algorithm == "vpdq"]
    assert len(from_signal(row.hash)) == 10
    (parsed,) = read(io.StringIO(to_json(row) + "\n"))
    assert parsed == row
    bad = json.dumps({"algorithm": "vpdq", "hash": '["zz,1,0"]', "list": "l", "id": "x"})
    empty = json.dumps({"algorithm": "vpdq", "hash": "[]", "list": "l", "id": "x"})
    assert [r.reason for r in read(io.StringIO(f"{bad}\n{empty}\n"))] == [
        "vpdq frame 1: malformed hash, quality or timestamp",
        "vpdq signal has no frames",
    ]


def test_a_re_encoded_or_mirrored_copy_of_a_listed_video_is_a_match_by_vpdq():
    store = video_list(("clip", CLIP), ("other", video(8, seed=9)))
    for copy in (video(10, crf=35, size=(240, 180)), video(10, edit=ImageOps.mirror)):
        result = match(fingerprint(copy), store)
        assert result.verdict == "match"
        assert [(m.algorithm, m.ref_id, m.member) for m in result.matches] == [("vpdq", "clip", "t=0.0-10.0s")]
    assert match(fingerprint(video(10, seed=50)), store).verdict == "clean"


def test_a_listed_video_inside_a_compilation_is_named_by_its_time_range_and_lists_set_their_own_rule():
    store = video_list(("clip", video(6, seed=3)))
    joined = samples.video(10, seed=3, start=-100)  # 4 s of another picture, then the listed video's 6 s
    result = match(fingerprint(zipped({"c.mp4": joined})), store)
    assert result.verdict == "match" and [m.member for m in result.matches] == ["c.mp4!t=4.0-10.0s"]
    half = video(3, seed=3)  # half the listed video: under the default 80% of its frames
    assert match(fingerprint(half), store).verdict == "clean"
    lenient = Policy(per_list={"l": {"vpdq_listed_percent": 40}})
    assert match(fingerprint(half), store, lenient).verdict == "match"
