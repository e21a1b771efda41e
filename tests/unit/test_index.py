"""HammingIndex: exact radius search, checked against a brute-force reference implementation."""

import struct

import numpy as np
import pytest

from hashcheck.algorithms import ALGORITHMS
from hashcheck.matching import index as index_module
from hashcheck.matching.index import FewHashesIndex, HammingIndex, hex_to_array

PDQ = ALGORITHMS["pdq"]  # 32 bytes, threshold 31
PHASH = ALGORITHMS["phash"]  # 8 bytes, threshold 8


def brute(refs: np.ndarray, queries: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """The definition: every (query row, ref row, distance) within max_distance, by unpacking bits."""
    out = []
    for i, q in enumerate(queries):
        dist = np.unpackbits(refs ^ q, axis=1).sum(axis=1)
        out.extend((i, int(j), int(dist[j])) for j in np.flatnonzero(dist <= max_distance))
    return sorted(out)


def flip(row: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`row` with exactly `count` distinct bits flipped."""
    bits = np.unpackbits(row)
    bits[rng.choice(len(bits), count, replace=False)] ^= 1
    return np.packbits(bits)


def planted(nbytes: int, threshold: int, n: int = 3000, seed: int = 1):
    """Random references and queries with neighbours at threshold - 1, threshold and threshold + 1."""
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    queries = rng.integers(0, 256, (9, nbytes), dtype=np.uint8)  # rows 0..2 stay random
    targets = {}  # query row -> (ref row, planted distance)
    for row, delta in zip(range(3, 9), (-1, 0, 1, -1, 0, 1), strict=True):
        ref = int(rng.integers(0, n))
        queries[row] = flip(refs[ref], threshold + delta, rng)
        targets[row] = (ref, threshold + delta)
    return refs, queries, targets


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("algorithm", [PDQ, PHASH], ids=["pdq", "phash"])
def test_boundary_matches_brute_force(algorithm, compact):
    t = algorithm.threshold
    refs, queries, targets = planted(algorithm.hex_length // 2, t)
    index = HammingIndex(refs, compact=compact)
    got = index.search(queries, t)
    assert got == brute(refs, queries, t)
    for row, (ref, dist) in targets.items():
        assert ((row, ref, dist) in got) == (dist <= t)  # t - 1 and t included, t + 1 excluded
    # one more bit of radius picks up the t + 1 neighbours, one less drops the t ones
    wider, narrower = index.search(queries, t + 1), index.search(queries, t - 1)
    assert wider == brute(refs, queries, t + 1)
    assert narrower == brute(refs, queries, t - 1)
    assert {(r, ref) for r, (ref, dist) in targets.items() if dist == t + 1} <= {(q, r) for q, r, _ in wider}
    assert not any(d == t for _, _, d in narrower)


@pytest.mark.parametrize("algorithm", [PDQ, PHASH], ids=["pdq", "phash"])
def test_search_hex_matches_search(algorithm):
    t = algorithm.threshold
    refs, queries, _ = planted(algorithm.hex_length // 2, t, n=500)
    index = HammingIndex.from_hex([r.tobytes().hex() for r in refs])
    assert index.nbytes == algorithm.hex_length // 2 and len(index) == 500
    hex_queries = [q.tobytes().hex().upper() for q in queries]  # case does not matter
    assert index.search_hex(hex_queries, t) == index.search(queries, t) == brute(refs, queries, t)
    assert index.search_hex(hex_queries[4], t) == index.search(queries[4], t)


def test_many_variants_many_hits_and_duplicates():
    rng = np.random.default_rng(2)
    refs = rng.integers(0, 256, (4000, 32), dtype=np.uint8)
    refs[100:110] = refs[7]  # the same hash listed ten more times
    refs[200:230] = [flip(refs[7], int(k), rng) for k in rng.integers(0, 40, 30)]  # a cluster around it
    queries = np.stack([flip(refs[7], 5, rng), refs[7], flip(refs[7], 5, rng), refs[3999]])
    queries = np.vstack([queries, queries[:2]])  # repeated query rows each get their pairs
    got = HammingIndex(refs).search(queries, 31)
    assert got == brute(refs, queries, 31)
    assert {ref for q, ref, _ in got if q == 1} >= {7, *range(100, 110)}
    assert [x[1:] for x in got if x[0] == 0] == [x[1:] for x in got if x[0] == 4]


def test_single_row_query_and_exact_match():
    refs, queries, _ = planted(32, 31, n=200)
    index = HammingIndex(refs)
    assert index.search(refs[17], 0) == [(0, 17, 0)]
    assert index.search(queries[4], 31) == [(0, r, d) for _, r, d in index.search(queries[4:5], 31)]
    assert [d for _, _, d in index.search(queries[4], 31)] == [31]  # the neighbour planted at exactly 31
    assert index.search(queries[5], 31) == []  # and the one at 32


def test_empty_index_and_empty_queries():
    for index in (HammingIndex(np.zeros((0, 32), dtype=np.uint8)), HammingIndex.from_hex([])):
        assert len(index) == 0
        assert index.search(np.zeros((3, 32), dtype=np.uint8), 31) == []
        assert HammingIndex.from_bytes(index.to_bytes()).search(np.zeros((1, 32), dtype=np.uint8), 31) == []
    index = HammingIndex(np.zeros((0, 8), dtype=np.uint8))
    assert index.nbytes == 8
    assert index.search_hex(["00" * 8], 8) == []
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 32), dtype=np.uint8), 8)  # the width is still checked
    full = HammingIndex(np.ones((5, 8), dtype=np.uint8))
    assert full.search(np.zeros((0, 8), dtype=np.uint8), 8) == []
    assert full.search([], 8) == []
    assert full.search_hex([], 8) == []


def test_radius_extremes_and_argument_errors():
    refs, queries, _ = planted(8, 8, n=300)
    index = HammingIndex(refs)
    assert index.search(queries, -1) == []
    assert index.search(refs[:4], 0) == brute(refs, refs[:4], 0)
    everything = index.search(queries[:2], 64)  # every reference is within 64 of a 64-bit hash
    assert len(everything) == 2 * 300 and everything == brute(refs, queries[:2], 64)
    assert index.search(queries, np.int64(8)) == brute(refs, queries, 8)
    for bad in (8.0, "8", None, True):
        with pytest.raises(ValueError):
            index.search(queries, bad)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 7), dtype=np.uint8), 8)
    with pytest.raises(ValueError):
        index.search(np.full((1, 8), 300), 8)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 8), dtype=np.float32), 8)
    with pytest.raises(ValueError):
        HammingIndex(np.zeros((2, 2, 8), dtype=np.uint8))
    with pytest.raises(ValueError):
        HammingIndex(np.zeros((2, 0), dtype=np.uint8))


@pytest.mark.parametrize("nbytes", [1, 3, 5, 20])
def test_other_widths(nbytes):
    rng = np.random.default_rng(nbytes)
    refs = rng.integers(0, 256, (2000, nbytes), dtype=np.uint8)
    queries = np.stack([flip(refs[i], min(i, 8 * nbytes), rng) for i in range(12)])
    for d in (0, 2, 4 * nbytes, 8 * nbytes - 1):
        for compact in (False, True):
            assert HammingIndex(refs, compact=compact).search(queries, d) == brute(refs, queries, d)


def test_row_ids_wider_than_16_bits():
    """n > 65536 stores row ids in two planes (3 bytes); they must recombine to the right rows."""
    rng = np.random.default_rng(3)
    refs = rng.integers(0, 256, (70_000, 8), dtype=np.uint8)
    queries = np.stack([flip(refs[i], 8, rng) for i in (0, 65_535, 65_536, 69_999)])
    index = HammingIndex(refs)
    assert index._id_width == 3
    got = index.search(queries, 8)
    assert got == brute(refs, queries, 8)
    assert {r for _, r, _ in got} >= {0, 65_535, 65_536, 69_999}
    assert HammingIndex.from_bytes(index.to_bytes()).search(queries, 8) == got


def test_four_byte_row_ids(monkeypatch):
    monkeypatch.setattr(index_module, "_id_width", lambda n: 4)
    refs, queries, _ = planted(32, 31, n=1000)
    index = HammingIndex(refs)
    assert index._id_width == 4
    assert index.search(queries, 31) == brute(refs, queries, 31)
    assert HammingIndex.from_bytes(index.to_bytes()).search(queries, 31) == brute(refs, queries, 31)


def clustered(n: int, seed: int) -> np.ndarray:
    """PDQ-like lists are clustered: many hashes a few bits from a few popular ones, some duplicated."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (5, 32), dtype=np.uint8)
    refs = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    for i in rng.choice(n, n * 2 // 3, replace=False):
        refs[i] = flip(centres[i % 5], int(rng.integers(0, 45)), rng)
    return refs


@pytest.mark.parametrize("compact", [False, True])
def test_clustered_data_scan_fallback_and_batches(monkeypatch, compact):
    refs = clustered(3000, seed=4)
    rng = np.random.default_rng(5)
    queries = np.stack([flip(refs[300 * i], 20 + 2 * i, rng) for i in range(10)])
    expected = brute(refs, queries, 31)
    assert len(expected) > 100  # the clusters make the answers large
    assert HammingIndex(refs, compact=compact).search(queries, 31) == expected
    monkeypatch.setattr(index_module, "_BATCH", 50)  # candidates expanded in many small batches
    assert HammingIndex(refs, compact=compact).search(queries, 31) == expected
    monkeypatch.setattr(index_module, "_COST_SCAN_WORD", 1e-9)  # every row answered by the scan
    monkeypatch.setattr(index_module, "_SCAN_BLOCK", 1000)
    assert HammingIndex(refs, compact=compact).search(queries, 31) == expected


def test_plan_is_exact_pigeonhole():
    """Per window (chunks 2w, 2w+1) of radius R: full balls of radius r_a, r_b with r_a + r_b >= R - 1, a
    partner allowance of R - (bits flipped), and sum(R + 1) >= d + 1 over the windows."""
    index = HammingIndex(clustered(500, seed=6))
    for d in (0, 1, 2, 30, 31, 32, 47, 100):
        plan = index._plan(d)
        weight = np.bitwise_count(plan.mask)
        total = 0
        for a in range(0, 16, 2):
            window = plan.chunk // 2 == a // 2
            radius = int((plan.allow + weight)[window].max()) if window.any() else -1
            assert np.all((plan.allow + weight)[window] == radius)
            r = []
            for chunk in (a, a + 1):
                mine = plan.chunk == chunk
                r.append(int(weight[mine].max()) if mine.any() else -1)
                assert mine.sum() == sum(np.bitwise_count(np.arange(1 << 16)) <= r[-1])
                assert np.all(plan.partner[mine] == chunk ^ 1)
            assert r[0] + r[1] >= radius - 1
            total += radius + 1
        assert total >= d + 1
    assert index._plan(31).probes == 16 * 17  # radius 1 on all 16 chunks for this data


def test_snapshot_round_trip_and_layout():
    refs, queries, _ = planted(32, 31, n=2500)
    for compact in (False, True):
        index = HammingIndex(refs, compact=compact)
        data = index.to_bytes()
        assert data[:8] == b"HCHAMIDX" and struct.unpack_from("<H", data, 8)[0] == 1
        assert len(data) >= index.memory_bytes
        expected = index.search(queries, 31)
        for blob in (data, memoryview(data), bytearray(data), memoryview(b"x" + data)[1:]):
            loaded = HammingIndex.from_bytes(blob)
            assert (len(loaded), loaded.nbytes) == (2500, 32)
            assert loaded.search(queries, 31) == expected
            assert loaded.to_bytes() == data
    assert len(HammingIndex(refs, compact=True).to_bytes()) < len(HammingIndex(refs).to_bytes())


def test_from_bytes_zero_copy():
    data = HammingIndex(planted(32, 31, n=100)[0]).to_bytes()
    loaded = HammingIndex.from_bytes(data)
    assert np.shares_memory(loaded._hashes, np.frombuffer(data, dtype=np.uint8))


def test_malformed_snapshots_raise_value_error():
    refs, queries, _ = planted(32, 31, n=300)
    data = HammingIndex(refs).to_bytes()
    corrupt = bytearray(data)
    corrupt[-5] ^= 0x40
    wrong_version = bytearray(data)
    wrong_version[8] = 9
    bad_magic = b"NOTANIDX" + data[8:]
    bad_cases = [b"", data[:40], data[:-1], data + b"\0", bad_magic, bytes(wrong_version), bytes(corrupt)]
    for blob in bad_cases:
        with pytest.raises(ValueError):
            HammingIndex.from_bytes(blob)
    with pytest.raises(ValueError):
        HammingIndex.from_bytes("not bytes")
    # Without the CRC check, broken bucket offsets are still refused.
    offsets_at = next(i for i in range(64, len(data), 64) if i >= 64 + 300 * 32)
    broken = bytearray(data)
    broken[offsets_at + 4 : offsets_at + 8] = (10**6).to_bytes(4, "little")
    with pytest.raises(ValueError):
        HammingIndex.from_bytes(bytes(broken), check=False)
    assert HammingIndex.from_bytes(bytes(corrupt), check=False).nbytes == 32  # payload is not re-verified


def test_hex_to_array():
    arr = hex_to_array(["00ff10", "a0B0c0"])
    assert arr.dtype == np.uint8 and arr.tolist() == [[0, 255, 16], [160, 176, 192]]
    assert hex_to_array([]).shape == (0, 0)
    for bad in (["00", "0000"], ["0"], [""], ["zz"], ["0 11"], [" 0011"], [b"00"], [12], "00ff"):
        with pytest.raises(ValueError):
            hex_to_array(bad)


def test_index_copies_its_input():
    refs, _, _ = planted(8, 8, n=50)
    index = HammingIndex(refs)
    original = refs[3].copy()
    refs[3] ^= 0xFF
    assert index.search(original, 0) == [(0, 3, 0)]


@pytest.mark.parametrize("nbytes", [1, 3, 8, 20, 32])
def test_few_hashes_index_finds_exactly_what_brute_force_finds(nbytes):
    """A few indexed hashes, many rows streamed through: every (row, hash) pair within the radius, at
    the radius, one bit inside it and one outside it, across the block boundary too."""
    rng = np.random.default_rng(nbytes)
    few = rng.integers(0, 256, (40, nbytes), dtype=np.uint8)
    many = rng.integers(0, 256, (FewHashesIndex.BLOCK + 500, nbytes), dtype=np.uint8)
    for d in sorted({0, 2, min(8, 8 * nbytes - 1), min(31, 8 * nbytes - 1)}):
        for k, row in enumerate(range(FewHashesIndex.BLOCK - 6, FewHashesIndex.BLOCK + 6)):
            many[row] = flip(few[k % 40], max(0, min(d + k % 3 - 1, 8 * nbytes)), rng)
        assert FewHashesIndex(few, d).search(many) == brute(few, many, d)  # (row, indexed hash, distance)


def test_few_hashes_index_with_nothing_to_find():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (100, 32), dtype=np.uint8)
    assert FewHashesIndex(np.zeros((0, 32), dtype=np.uint8), 31).search(rows) == []
    assert FewHashesIndex(rows[:3], 31).search(np.zeros((0, 32), dtype=np.uint8)) == []
    assert FewHashesIndex(rows[:3], -1).search(rows) == []
    with pytest.raises(ValueError):
        FewHashesIndex(rows[:3], 31).search(rows[:, :8])
