"""Exact Hamming-radius search over perceptual hashes, in memory, in plain numpy.

``HammingIndex`` answers: which reference hashes lie within Hamming distance ``d`` of any of these query
hashes (a fingerprint's up to 8 dihedral variants)? It is exact: every reference within the radius is
returned with its distance, and nothing farther away. PDQ (256 bits, d = 31) is the tuned case; pHash
(64 bits, d = 8) and any other whole number of bytes use the same code.

Design: multi-index hashing over 16-bit chunks, with a partner-chunk filter
---------------------------------------------------------------------------
The hash is cut into 16-bit chunks (PDQ 16, pHash 4; an odd last byte is an 8-bit chunk), and the chunks
into *windows* of two neighbours (0, 1), (2, 3), ... Generalised pigeonhole: give window ``w`` a radius
``R_w`` with ``sum(R_w + 1) >= d + 1``; a reference within ``d`` then has some window within ``R_w``, and
inside that window one of its two chunks is within ``r_a`` or ``r_b`` of the query's, for any
``r_a + r_b = R_w - 1``. PDQ at d = 31: 8 windows at R = 3, each chunk probed at radius 1, i.e. 16 x 17
= 272 bucket probes per query hash (the classic 16-table multi-index hash).

Each chunk has a table: a counting sort of the rows by that chunk (``offsets``, 65537 uint32, and the row
ids in that order), so a probe is two array reads and its bucket a contiguous slice; no dict. Next to
each row id the table stores the row's *partner chunk* (the other chunk of the window). A candidate found
by probing chunk ``a`` at distance ``e`` can only be a match if its partner is within ``R - e`` of the
query's; for random data that rejects ~99.7% of the candidates (16 random bits are within 2 of a given
value with probability 137/65536) while reading only the table, sequentially. Only the ~0.3% survivors
touch the row ids and the hashes (random access), where the full distance is computed. Why it matters:
the cost here is memory latency, not arithmetic. At 1.4M PDQ a query expands ~46k candidates; verifying
each against the hash array (plain multi-index hashing, ``compact=True``) measured 2.1-3.3 ms per query,
mostly cache and TLB misses; the partner filter reads 2 bytes per candidate in runs: 0.5-0.95 ms.

Everything for one query is one vectorised pass over all its rows and probes: probe keys -> bucket
slices -> candidate positions (``np.repeat`` + ``arange``) -> partner filter -> row ids -> XOR/popcount
-> distance filter; references found through several chunks are de-duplicated at the end (only
survivors, so that sort is tiny). Radii for any ``d`` are chosen greedily by an estimated cost that uses
the real bucket sizes.

Skew and the worst case. Real lists are clustered, so bucket sizes are not n / 65536. The radii are
planned with the size-biased mean bucket size of each table (a window whose chunks fall in huge buckets
gets a smaller radius, or is probed through its other chunk). Before expanding anything, the exact
candidate count of every query row is known from the offsets; a row whose candidates would cost more
than scanning every reference (measured costs, see ``_COST_*``) is answered by a blocked brute-force
scan, and candidates are expanded in batches of at most 2**20. So a pathological list or radius costs
about a brute-force scan with bounded temporary memory, never a wrong answer. For uniform data the scan
takes over from d ~ 70-80 for PDQ.

Figures (``python bench/match.py``, a 2-vCPU 2.1 GHz VM shared with other jobs, numpy 2.4, one
thread; ranges are over several runs, the machine's state moves everything by up to ~1.8x). 1.4M random
PDQ references, one query = 8 variants, d = 31: median 0.5-0.95 ms, p99 0.6-1.4 ms; ``compact`` 2.1-3.3
ms; a column-wise numpy brute force 93-115 ms; faiss ``IndexBinaryMultiHash(256, 16, 16)``, nflip=1
(exact at radius 31; 8 x 32 bits with nflip=3 is slower) 17-41 ms, i.e. 20-45x slower. ``from_bytes``
0.05-0.1 s (the CRC32; the arrays are zero-copy ``np.frombuffer`` views). 10M PDQ: 1.4-3.4 ms per query
(``bench/scale.py``: median 1.41, p99 2.34), 112.4 bytes/reference. 1.4M pHash at d = 8: 0.3-0.5 ms.

Memory, and the 40 bytes/reference target. Per PDQ reference: 32 (hash) + 16 x 3 (row ids; 2 bytes when
n <= 65536, 4 above 2**24) + 16 x 2 (partner chunks) + 16 x 65537 x 4 / n (offsets) bytes: 115 at 1.4M,
112.4 at 10M (1.05 GiB; fits a 3 GB Lambda). ``compact=True`` drops the partner planes: 83 / 80.4 bytes,
3-4x slower queries. Neither meets 40, and no exact sublinear index can at d = 31: with ``k`` tables
over ``b``-bit chunks, exactness needs ``sum(r_j + 1) >= 32``; a radius-r probe of a b-bit chunk costs
C(b, <=r) bucket reads, so r must stay ~1-2 and ``k * b`` ~ 256 bits of chunk keys must be indexed; and
every table entry must locate its row (>= ~b bits even ideally compressed). The tables together
therefore hold about as many bits as the hashes themselves. With ~8 bytes/reference there is room for 2
tables, whose chunk radii (~10) would probe essentially every key, i.e. a linear scan, and in numpy a
scan of 1.4M PDQ costs ~100 ms per query (the best plain-numpy form; even one 16-bit lookup-table pass
over 1.4M keys is ~2 ms, and 16 would be needed), slower than faiss. So this design spends memory on
latency: about 75 bytes/reference of index buy a ~150x faster query than a scan.

Snapshot (``to_bytes``/``from_bytes``): a 64-byte little-endian header (magic ``HCHAMIDX``, format
version, flags, nbytes, n, id width, payload size, CRC32 of the payload) followed by the arrays exactly
as held in memory, each at a 64-byte boundary, so loading is ``np.frombuffer`` views plus the CRC and a
check of the offsets: nothing is rebuilt.
"""

from __future__ import annotations

import operator
import struct
import threading
import zlib
from collections.abc import Iterable, Sequence
from math import comb

import numpy as np

__all__ = ["FewHashesIndex", "HammingIndex", "hex_to_array"]

_KEYS = 1 << 16  # values of a 16-bit chunk
_STRIDE = _KEYS + 1  # offsets per table
_BATCH = 1 << 20  # candidates expanded at once
_SCAN_BLOCK = 1 << 21  # (query rows x references) per block of a brute-force scan
_PREFETCH_MIN = 1 << 13  # below this many candidates, do not bother warming the cache
# Costs in ~ns, measured on the reference machine with batches large enough to leave the caches: per
# probe, per candidate read from a table, per candidate verified against the hashes, and per reference
# and 64-bit word of a brute-force scan.
_COST_PROBE = 40.0
_COST_CANDIDATE = 20.0
_COST_VERIFY = 80.0
_COST_SCAN_WORD = 4.0

_MAGIC = b"HCHAMIDX"
_VERSION = 1
_FLAG_PARTNER = 1
# magic, version, header size, flags, nbytes, n, id width, payload size, crc32 of the payload: 64 bytes
_HEADER = struct.Struct("<8sHHIIQIQI20x")
_ALIGN = 64


def row_keys(rows: np.ndarray) -> np.ndarray:
    """Each (n, nbytes) row as one opaque item, ordered as its bytes are: to sort or binary-search rows."""
    return np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()


def hex_to_array(hex_hashes: Iterable[str]) -> np.ndarray:
    """Hex strings of equal, even length -> (n, nbytes) uint8; byte 0 is the first two hex digits.

    An empty input gives a (0, 0) array. Raises ValueError for mixed or odd lengths, non-hex characters
    (whitespace included) and items that are not strings.
    """
    if isinstance(hex_hashes, (str, bytes)):
        raise ValueError("expected a sequence of hex strings, not a single string")
    items = list(hex_hashes)
    if not items:
        return np.zeros((0, 0), dtype=np.uint8)
    try:
        joined = "".join(items)
        lengths = set(map(len, items))
    except TypeError as exc:
        raise ValueError("hashes must be hex strings") from exc
    if len(lengths) != 1:
        raise ValueError("hashes differ in length")
    length = lengths.pop()
    if length == 0 or length % 2:
        raise ValueError(f"hashes must have a positive, even number of hex digits, not {length}")
    try:
        raw = bytes.fromhex(joined)
    except ValueError as exc:
        raise ValueError("hashes must contain only hex digits") from exc
    nbytes = length // 2
    if len(raw) != len(items) * nbytes:  # fromhex skips whitespace; we do not accept it
        raise ValueError("hashes must contain only hex digits")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(items), nbytes)


def _as_rows(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype != np.uint8:
        if a.dtype.kind not in "ui" or (a.size and (a.min() < 0 or a.max() > 255)):
            raise ValueError(f"{name} must be uint8 bytes, not {a.dtype}")
        a = a.astype(np.uint8)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, nbytes) array, not shape {a.shape}")
    return a


def _id_width(n: int) -> int:
    """Bytes per stored row id: 2 up to 65536 rows, 3 (uint16 + uint8 planes) up to 2**24, else 4."""
    return 2 if n <= 1 << 16 else 3 if n <= 1 << 24 else 4


def _chunk_bits(nbytes: int) -> tuple[int, ...]:
    return tuple(16 if 2 * j + 1 < nbytes else 8 for j in range(-(-nbytes // 2)))


def _padded(rows: np.ndarray, words: int, copy: bool = False) -> np.ndarray:
    """(n, nbytes) uint8 -> (n, 8 * words) uint8, zero-padded and C-contiguous (a new array if copy)."""
    n, nbytes = rows.shape
    if nbytes == 8 * words:
        return np.array(rows, order="C", copy=True) if copy else np.ascontiguousarray(rows)
    out = np.zeros((n, 8 * words), dtype=np.uint8)
    out[:, :nbytes] = rows
    return out


def _chunk_keys(padded: np.ndarray, nchunks: int) -> np.ndarray:
    """Chunk j of each row: little-endian uint16 of bytes 2j, 2j + 1 (an odd tail's pad byte is 0)."""
    return padded.view("<u2")[:, :nchunks]


def _ball(bits: int, radius: int) -> int:
    return sum(comb(bits, i) for i in range(min(radius, bits) + 1)) if radius >= 0 else 0


_BY_WEIGHT: dict[int, np.ndarray] = {}  # chunk bits -> all values of that width, by popcount


def _masks(bits: int, radius: int) -> np.ndarray:
    ordered = _BY_WEIGHT.get(bits)
    if ordered is None:
        values = np.arange(1 << bits, dtype=np.int64)
        ordered = _BY_WEIGHT[bits] = values[np.argsort(np.bitwise_count(values), kind="stable")]
    return ordered[: _ball(bits, radius)]


_ARANGE = np.arange(1 << 16, dtype=np.intp)


def _arange(count: int) -> np.ndarray:
    global _ARANGE
    if count > len(_ARANGE):
        _ARANGE = np.arange(max(count, 2 * len(_ARANGE)), dtype=np.intp)
    return _ARANGE[:count]


class _Plan:
    """The probes for one radius: table, XOR mask, partner allowance, and where each table lives.

    A candidate of probe p passes the partner filter if popcount(partner ^ query partner) <= allow[p]. To
    compare every candidate with one scalar, probe p's query partner value carries ``limit - allow[p]``
    set bits above bit 15 (the stored partner is 16 bits, so they always count as differences), and the
    test becomes popcount(...) <= limit.
    """

    def __init__(self, chunk: np.ndarray, mask: np.ndarray, allow: np.ndarray, partner: np.ndarray, n: int):
        self.chunk = chunk  # (P,) chunk (= table) probed
        self.mask = mask  # (P,) XOR applied to the query's chunk value
        self.allow = allow  # (P,) largest partner distance that can still match (lone chunks: 16)
        self.partner = partner  # (P,) chunk whose query value the partner plane is compared with
        self.offset_base = chunk * _STRIDE
        self.id_base = chunk * n
        self.probes = len(chunk)
        self.limit = int(allow.max(initial=0))
        extra = self.limit - allow.astype(np.int64)
        self.partner_dtype = np.uint32 if extra.max(initial=0) <= 16 else np.uint64
        self.penalty = np.left_shift((np.int64(1) << extra) - 1, 16)
        # Share of candidates expected to pass the partner filter (random partners).
        balls = np.array([_ball(16, r) for r in range(17)], dtype=np.float64)
        self.passing = float(balls[np.clip(allow, 0, 16)].mean() / _KEYS) if len(allow) else 1.0


class HammingIndex:
    """Exact Hamming-radius index over fixed-size hashes (design and figures: module docstring).

    ``compact=True`` leaves out the partner-chunk planes (2 bytes per chunk and reference): less memory,
    slower queries, same answers.
    """

    def __init__(self, hashes: np.ndarray, *, compact: bool = False):
        rows = _as_rows(hashes, "hashes")
        n, nbytes = rows.shape
        if n and not nbytes:
            raise ValueError("hashes must have at least one byte")
        if n >= 1 << 32:
            raise ValueError("at most 2**32 - 1 references")
        bits = _chunk_bits(nbytes)
        k = len(bits)
        words = -(-nbytes // 8)
        padded = _padded(rows, words, copy=True)  # the index owns its hashes
        id_width = _id_width(n)
        offsets = np.zeros((k, _STRIDE), dtype=np.uint32)
        ids_lo = np.empty((k, n), dtype=np.uint32 if id_width == 4 else np.uint16)
        ids_hi = np.empty((k, n) if id_width == 3 else (0, 0), dtype=np.uint8)
        partner = np.zeros((0, 0) if compact else (k, n), dtype=np.uint16)
        keys = _chunk_keys(padded, k)
        for j in range(k):
            key = np.ascontiguousarray(keys[:, j])
            order = np.argsort(key, kind="stable")  # a radix sort for uint16; ids ascend within a bucket
            np.cumsum(np.bincount(key, minlength=_KEYS), out=offsets[j, 1:])
            if id_width == 3:
                np.bitwise_and(order, 0xFFFF, out=ids_lo[j], casting="unsafe")
                np.right_shift(order, 16, out=ids_hi[j], casting="unsafe")
            else:
                ids_lo[j] = order
            if not compact and j ^ 1 < k:
                np.take(keys[:, j ^ 1], order, out=partner[j])
        self._init(nbytes, n, id_width, not compact, padded.view("<u8"), offsets, ids_lo, ids_hi, partner)

    def _init(self, nbytes, n, id_width, has_partner, hashes, offsets, ids_lo, ids_hi, partner) -> None:
        self.nbytes = nbytes
        self._n = n
        self._bits = _chunk_bits(nbytes)
        self._words = hashes.shape[1]
        self._id_width = id_width
        self._hashes = hashes  # (n, words) uint64, row order
        self._offsets = offsets  # (chunks, 65537) uint32: bucket starts per table
        self._ids_lo = ids_lo  # (chunks, n) row ids in table order: uint16/uint32
        self._ids_hi = ids_hi  # (chunks, n) uint8 high byte when ids take 3 bytes
        self._partner = partner  # (chunks, n) uint16 partner chunk in table order, or empty
        self._has_partner = has_partner
        self._offsets_flat = offsets.reshape(-1)
        self._ids_lo_flat = ids_lo.reshape(-1)
        self._ids_hi_flat = ids_hi.reshape(-1)
        self._partner_flat = partner.reshape(-1)
        # Expected references per probe of each table for a query drawn like the data: the size-biased
        # mean bucket size (n / 65536 + 1 for uniform data, far more for clustered lists).
        sizes = np.diff(offsets, axis=1).astype(np.float64)
        self._bucket_mean = (sizes * sizes).sum(axis=1) / max(n, 1)
        self._plans: dict[int, _Plan | None] = {}
        self._window_costs: dict[tuple, tuple[float, tuple[int, int]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_hex(cls, hex_hashes: Iterable[str], *, compact: bool = False) -> HammingIndex:
        return cls(hex_to_array(hex_hashes), compact=compact)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"HammingIndex(n={self._n}, nbytes={self.nbytes}, compact={not self._has_partner})"

    def rows(self) -> np.ndarray:
        """The indexed hashes, (n, nbytes) uint8 in row order: a view, no copy."""
        return self._hashes.view(np.uint8).reshape(self._n, -1)[:, : self.nbytes]

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (hashes, offsets, row ids, partner chunks)."""
        return int(sum(a.nbytes for a in self._sections()))

    # ------------------------------------------------------------------ search

    def search(self, queries: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
        """(query_row, ref_row, distance) for every pair within ``max_distance``, sorted.

        ``queries`` is (q, nbytes) uint8, or a single (nbytes,) row (query_row 0). A negative
        ``max_distance`` matches nothing.
        """
        q = np.asarray(queries)
        if q.ndim == 1 and q.size == 0:  # e.g. an empty list of queries
            return []
        q = _as_rows(q.reshape(1, -1) if q.ndim == 1 else q, "queries")
        if self.nbytes and q.shape[1] != self.nbytes:
            raise ValueError(f"queries must have {self.nbytes} bytes per row, not {q.shape[1]}")
        if isinstance(max_distance, bool):
            raise ValueError("max_distance must be an integer")
        try:
            d = operator.index(max_distance)
        except TypeError as exc:
            raise ValueError("max_distance must be an integer") from exc
        qrow, ref, dist = self._search(q, d)
        return list(zip(qrow.tolist(), ref.tolist(), dist.tolist(), strict=True))

    def search_hex(self, hex_queries: Sequence[str], max_distance: int) -> list[tuple[int, int, int]]:
        """``search`` for hex strings (a bare string is one query)."""
        if isinstance(hex_queries, str):
            hex_queries = [hex_queries]
        q = hex_to_array(hex_queries)
        return self.search(q, max_distance) if len(q) else []

    def _search(self, q: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nq = len(q)
        if self._n == 0 or nq == 0 or d < 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        padded = _padded(q, self._words)
        qwords = padded.view("<u8")
        plan = self._plan(d)
        scan_cost = self._n * self._scanned_words(d) * _COST_SCAN_WORD
        if plan is None or plan.probes * _COST_PROBE >= scan_cost:
            return self._scan(np.arange(nq), qwords, d)

        # Bucket slice of every (query row, probe); the candidate count of each row decides its method.
        qkeys = np.zeros((nq, len(self._bits) + 1), dtype=np.int64)  # last column: 0 for lone chunks
        qkeys[:, :-1] = _chunk_keys(padded, len(self._bits))
        slots = (qkeys[:, plan.chunk] ^ plan.mask) + plan.offset_base  # (rows, probes)
        starts = self._offsets_flat[slots].astype(np.intp)
        lengths = self._offsets_flat[slots + 1].astype(np.intp)
        lengths -= starts
        per_row = lengths.sum(axis=1)
        verify = _COST_CANDIDATE + plan.passing * _COST_VERIFY if self._has_partner else _COST_VERIFY
        indexed = per_row * verify + plan.probes * _COST_PROBE < scan_cost
        parts = []
        if not indexed.all():
            parts.append(self._scan(np.flatnonzero(~indexed), qwords, d))
        rows = np.flatnonzero(indexed)
        if len(rows):
            parts.append(self._probe(rows, plan, qkeys, qwords, starts[rows], lengths[rows], d))
        if len(parts) == 1:
            return parts[0]
        qr, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
        order = np.lexsort((ids, qr))
        return qr[order], ids[order], dist[order]

    def _probe(self, rows, plan: _Plan, qkeys, qwords, starts, lengths, d):
        """Candidates of the probes of ``rows`` -> partner filter -> verified, de-duplicated pairs."""
        first = (starts + plan.id_base).reshape(-1)  # flat table position of each slice
        lengths = lengths.reshape(-1)
        # The query's partner value for each probe, with the probe's penalty bits above bit 15 (see _Plan).
        qpartner = (qkeys[rows][:, plan.partner] | plan.penalty).astype(plan.partner_dtype).reshape(-1)
        ends = np.cumsum(lengths)
        total = int(ends[-1])
        if total <= _BATCH:
            batches = [(0, len(lengths))]
        else:  # cut after the probe that crosses each multiple of _BATCH candidates
            cuts = np.searchsorted(ends, np.arange(_BATCH, total, _BATCH), side="left") + 1
            bounds = np.unique(np.concatenate(([0], cuts, [len(lengths)])))
            batches = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        found = []
        for a, b in batches:
            batch_ends = ends if b - a == len(lengths) else np.cumsum(lengths[a:b])
            pos, probe = self._expand(first[a:b], lengths[a:b], batch_ends, qpartner[a:b], plan.limit)
            if self._id_width == 3:
                ids = np.take(self._ids_hi_flat, pos).astype(np.intp)
                ids <<= 16
                ids |= np.take(self._ids_lo_flat, pos)
            else:
                ids = np.take(self._ids_lo_flat, pos).astype(np.intp)
            probe += a
            probe //= plan.probes
            found.append(self._verify(rows[probe], ids, qwords, d))
        qr, ids, dist = (np.concatenate(f) for f in zip(*found, strict=True))
        # A reference close to a query row is usually found through several chunks: keep it once.
        key, first_seen = np.unique(qr * self._n + ids, return_index=True)
        return key // self._n, key % self._n, dist[first_seen]

    def _expand(self, first, lengths, ends, qpartner, limit):
        """Table positions of the candidates of a batch of probes that pass the partner filter, and the
        probe (index within the batch) each came from."""
        total = int(ends[-1]) if len(ends) else 0
        last = first + lengths
        if total >= _PREFETCH_MIN:
            # Touch the first and last entry of every slice first: these reads are independent, so the
            # CPU overlaps their cache misses, and the full gather below then mostly hits the cache.
            plane = self._partner_flat if self._has_partner else self._ids_lo_flat
            np.take(plane, first, mode="clip")
            np.take(plane, last - 1, mode="clip")
        last -= ends  # = first - (candidates before this slice)
        pos = np.repeat(last, lengths)
        pos += _arange(total)
        if not self._has_partner:
            return pos, np.repeat(_arange(len(lengths)), lengths)
        x = np.take(self._partner_flat, pos).astype(qpartner.dtype)
        x ^= np.repeat(qpartner, lengths)
        hit = np.flatnonzero(np.bitwise_count(x) <= limit)
        return pos[hit], np.searchsorted(ends, hit, side="right")

    def _verify(self, qr, ids, qwords, d):
        """Full distances of candidate pairs; keep those within d. Two stages when there are many."""
        if len(ids) > 4096 and self._words > 2:
            x = np.take(self._hashes, ids, axis=0)
            q = np.take(qwords, qr, axis=0)
            pc = np.bitwise_count(x[:, 0] ^ q[:, 0])
            pc += np.bitwise_count(x[:, 1] ^ q[:, 1])
            keep = np.flatnonzero(pc <= min(d, 255))
            qr, ids = qr[keep], ids[keep]
        x = np.take(self._hashes, ids, axis=0)
        x ^= np.take(qwords, qr, axis=0)
        dist = np.bitwise_count(x).sum(axis=1, dtype=np.int64)
        keep = np.flatnonzero(dist <= d)
        return qr[keep].astype(np.int64), ids[keep].astype(np.int64), dist[keep]

    def _scanned_words(self, d: int) -> int:
        return 2 if self._words > 2 and 3 * d <= 128 else self._words

    def _scan(self, rows: np.ndarray, qwords: np.ndarray, d: int):
        """Brute force for the query rows given, over blocks of references (bounded temporary memory).

        For a small radius the first 128 bits already reject nearly every reference (within d of 128
        random bits with probability < 1e-4 when d <= 42), so only those are scanned and the few
        survivors verified; otherwise every word is scanned.
        """
        sel = qwords[rows]
        scanned = self._scanned_words(d)
        step = max(256, _SCAN_BLOCK // len(rows))  # temporaries of at most ~_SCAN_BLOCK x 10 bytes
        found = []
        for start in range(0, self._n, step):
            block = self._hashes[start : start + step]
            x = np.empty((len(rows), len(block)), dtype=np.uint64)
            block_dist = np.zeros((len(rows), len(block)), dtype=np.uint16)
            for w in range(scanned):
                np.bitwise_xor(sel[:, w, None], block[None, :, w], out=x)
                block_dist += np.bitwise_count(x)
            r, c = np.nonzero(block_dist <= d)
            found.append((rows[r], c + start, block_dist[r, c]))
        qr, ids, dist = (np.concatenate(f).astype(np.int64) for f in zip(*found, strict=True))
        if scanned < self._words:
            qr, ids, dist = self._verify(qr, ids, qwords, d)
        order = np.lexsort((ids, qr))
        return qr[order], ids[order], dist[order]

    # ------------------------------------------------------------------ planning

    def _plan(self, d: int) -> _Plan | None:
        if d not in self._plans:
            with self._lock:
                self._plans[d] = self._make_plan(d)
        return self._plans[d]

    def _window_cost(self, a: int, b: int | None, radius: int) -> tuple[float, tuple[int, int]]:
        """Cheapest probe radii (r_a, r_b), r_a + r_b = radius - 1, for window (a, b), and its cost."""
        known = self._window_costs.get((a, b, radius))
        if known is None:
            known = self._window_costs[(a, b, radius)] = self._window_cost_uncached(a, b, radius)
        return known

    def _window_cost_uncached(self, a: int, b: int | None, radius: int) -> tuple[float, tuple[int, int]]:
        if radius < 0:
            return 0.0, (-1, -1)
        bits = self._bits
        if b is None:  # a lone chunk: probe it at the window radius, nothing to filter with
            splits = [(radius, -1)] if radius <= bits[a] else []
        else:
            splits = [(ra, radius - 1 - ra) for ra in range(-1, radius + 1)]
            splits = [(ra, rb) for ra, rb in splits if ra <= bits[a] and rb <= bits[b]]
        best = (float("inf"), (-1, -1))
        for ra, rb in splits:
            cost = 0.0
            for chunk, r, other in ((a, ra, b), (b, rb, a)):
                if r < 0 or chunk is None:
                    continue
                probes = _ball(bits[chunk], r)
                cands = probes * float(self._bucket_mean[chunk])
                if self._has_partner and other is not None:
                    # probes at distance e let the partner differ by radius - e; roughly the e = r share
                    passing = _ball(bits[other], radius - r) / (1 << bits[other])
                    cost += probes * _COST_PROBE + cands * (_COST_CANDIDATE + passing * _COST_VERIFY)
                else:
                    cost += probes * _COST_PROBE + cands * _COST_VERIFY
            best = min(best, (cost, (ra, rb)))
        return best

    def _make_plan(self, d: int) -> _Plan | None:
        """Window radii with sum(R + 1) >= d + 1 at the least estimated cost (greedy); None if the tables
        cannot cover d."""
        k = len(self._bits)
        windows = [(a, a + 1 if a + 1 < k else None) for a in range(0, k, 2)]
        top = [self._bits[a] + (self._bits[b] if b is not None else 0) for a, b in windows]
        if sum(t + 1 for t in top) < d + 1:
            return None
        radius = [-1] * len(windows)
        cost = [0.0] * len(windows)
        for _ in range(d + 1):
            best: tuple[float, int] | None = None
            for w, (a, b) in enumerate(windows):
                if radius[w] >= top[w]:
                    continue
                step = self._window_cost(a, b, radius[w] + 1)[0] - cost[w]
                if best is None or step < best[0]:
                    best = (step, w)
            assert best is not None  # sum(top + 1) >= d + 1: some window can still grow
            w = best[1]
            radius[w] += 1
            cost[w] = self._window_cost(*windows[w], radius[w])[0]
        chunk, mask, allow, partner = [], [], [], []
        for (a, b), r in zip(windows, radius, strict=True):
            split = self._window_cost(a, b, r)[1]
            for c, rc, other in ((a, split[0], b), (b, split[1], a)):
                if c is None or rc < 0:
                    continue
                m = _masks(self._bits[c], rc)
                chunk.append(np.full(len(m), c, dtype=np.intp))
                mask.append(m)
                # the partner may differ by r - e bits, e = bits flipped by this probe's mask
                if other is None:  # nothing to filter with: the plane holds 0, compared with query 0
                    allow.append(np.full(len(m), 16))
                else:
                    allow.append(r - np.bitwise_count(m).astype(np.int64))
                partner.append(np.full(len(m), k if other is None else other, dtype=np.intp))
        return _Plan(
            np.concatenate(chunk),
            np.concatenate(mask),
            np.concatenate(allow),
            np.concatenate(partner),
            self._n,
        )

    # ------------------------------------------------------------------ snapshot

    def _sections(self) -> list[np.ndarray]:
        return [self._hashes, self._offsets, self._ids_lo, self._ids_hi, self._partner]

    def to_bytes(self) -> bytes:
        """Header + arrays, each at a 64-byte boundary (format: module docstring)."""
        pieces: list[bytes | memoryview] = []
        crc, size = 0, 0
        for arr in self._sections():
            pad = -(_HEADER.size + size) % _ALIGN
            if pad:
                pieces.append(bytes(pad))
                crc = zlib.crc32(pieces[-1], crc)
                size += pad
            view = np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data
            pieces.append(view)
            crc = zlib.crc32(view, crc)
            size += len(view)
        flags = _FLAG_PARTNER if self._has_partner else 0
        fields = (self.nbytes, self._n, self._id_width, size, crc)
        header = _HEADER.pack(_MAGIC, _VERSION, _HEADER.size, flags, *fields)
        return b"".join([header, *pieces])

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, *, check: bool = True) -> HammingIndex:
        """Load a ``to_bytes`` snapshot without copying or rebuilding; ValueError if it is malformed.

        The arrays are read-only views of ``data``. ``check=False`` skips the CRC32 of the payload
        (~0.5 ms per MB).
        """
        try:
            buf = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError, BufferError) as exc:
            raise ValueError("snapshot must be a contiguous bytes-like object") from exc
        if len(buf) < _HEADER.size:
            raise ValueError("snapshot is too short for its header")
        magic, version, header_size, flags, nbytes, n, id_width, size, crc = _HEADER.unpack_from(buf.data)
        if magic != _MAGIC:
            raise ValueError("not a HammingIndex snapshot (bad magic)")
        if version != _VERSION or header_size != _HEADER.size:
            raise ValueError(f"unsupported snapshot format version {version}")
        if flags & ~_FLAG_PARTNER or (n and not nbytes) or n >= 1 << 32:
            raise ValueError("snapshot header is inconsistent")
        if id_width != _id_width(n):
            raise ValueError("snapshot header is inconsistent")
        if len(buf) != _HEADER.size + size:
            raise ValueError(f"snapshot is {len(buf)} bytes, its header says {_HEADER.size + size}")
        k = len(_chunk_bits(nbytes))
        specs = [
            ((n, -(-nbytes // 8)), "<u8"),
            ((k, _STRIDE), "<u4"),
            ((k, n), "<u4" if id_width == 4 else "<u2"),
            ((k, n) if id_width == 3 else (0, 0), "u1"),
            ((k, n) if flags & _FLAG_PARTNER else (0, 0), "<u2"),
        ]
        expected, layout = 0, []
        for shape, dtype in specs:
            expected += -(_HEADER.size + expected) % _ALIGN
            layout.append((expected, shape, np.dtype(dtype)))
            expected += int(np.prod(shape)) * np.dtype(dtype).itemsize
        if expected != size:
            raise ValueError("snapshot payload size does not match its header")
        payload = buf[_HEADER.size :]
        if check and zlib.crc32(payload.data) != crc:
            raise ValueError("snapshot is corrupt (CRC32 mismatch)")
        if buf.ctypes.data % 8:  # an unaligned buffer (e.g. a sliced memoryview): copy it once
            payload = payload.copy()
        arrays = []
        for start, shape, width in layout:
            end = start + int(np.prod(shape)) * width.itemsize
            arrays.append(payload[start:end].view(width).reshape(shape))
        offsets = arrays[1]
        if k and (np.any(offsets[:, 0] != 0) or np.any(offsets[:, -1] != n) or np.any(np.diff(offsets) > n)):
            raise ValueError("snapshot has inconsistent bucket offsets")
        index = cls.__new__(cls)
        index._init(nbytes, n, id_width, bool(flags & _FLAG_PARTNER), *arrays)
        return index


class FewHashesIndex:
    """Exact Hamming-radius search the other way round: a few hashes (a list update's new references)
    indexed, and many rows (every stored object's hashes) streamed through them, block by block.

    ``HammingIndex`` enumerates a ball of probe keys around each query row: 272 per PDQ row, which is
    right for a few queries against millions of references. Here the many are the queries, so the balls
    are enumerated once, around each indexed hash instead, into one table per chunk: a streamed row then
    costs one table read per chunk (16 for PDQ), whatever the radius, and no index is built over the
    rows (building a ``HammingIndex`` over a million rows costs ~0.3-0.6 s, this scan ~0.35 s).

    Same pigeonhole as ``HammingIndex`` (module docstring): chunks in windows of two, window ``w`` given a
    radius ``R_w`` with ``sum(R_w + 1) >= d + 1``, its chunks balls of ``r_a + r_b = R_w - 1``; a pair is a
    candidate when a chunk of the row lies in the ball of an indexed hash's chunk, kept when the two
    chunks of that window are within ``R_w`` together (16-bit reads only), and then checked whole.
    """

    BLOCK = 1 << 16  # rows per block: bounded temporaries whatever the number of rows

    def __init__(self, hashes: np.ndarray, max_distance: int):
        rows = _as_rows(hashes, "hashes")
        n, self.nbytes = rows.shape
        self.d = operator.index(max_distance)
        self._words = -(-self.nbytes // 8)
        padded = _padded(rows, self._words, copy=True)
        self._hashes = padded.view("<u8")  # (n, words): few, so they stay in the cache while rows stream by
        self._bits = _chunk_bits(self.nbytes)
        self._keys = _chunk_keys(padded, len(self._bits)).astype(np.intp)  # (n, chunks)
        self._tables: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None] = []
        for chunk, (radius, window_radius) in enumerate(self._radii()):
            if radius < 0 or n == 0:
                self._tables.append(None)
                continue
            masks = _masks(self._bits[chunk], radius)
            values = (self._keys[:, chunk, None] ^ masks[None, :]).ravel()
            order = np.argsort(values, kind="stable")
            counts = np.bincount(values, minlength=_KEYS).astype(np.uint32)  # small tables: they stay cached
            starts = (np.cumsum(counts, dtype=np.int64) - counts).astype(np.uint32)
            owners = (order // len(masks)).astype(np.intp)  # which indexed hash each ball value belongs to
            partner = chunk ^ 1 if chunk ^ 1 < len(self._bits) else -1
            self._tables.append((window_radius, partner, counts, starts, owners))

    def __len__(self) -> int:
        return len(self._hashes)

    def _radii(self) -> list[tuple[int, int]]:
        """(ball radius, window radius) per chunk."""
        k = len(self._bits)
        windows = -(-k // 2)
        base, extra = divmod(self.d + 1, windows)
        out: list[tuple[int, int]] = []
        for w in range(windows):
            window_radius = base - 1 + (w < extra)
            if 2 * w + 1 < k:
                first = window_radius // 2  # r_a + r_b = R_w - 1
                out += [(first, window_radius), (window_radius - 1 - first, window_radius)]
            else:  # a window of one chunk: probed at its whole radius
                out.append((window_radius, window_radius))
        return out

    def search(self, rows: np.ndarray) -> list[tuple[int, int, int]]:
        """(row, indexed hash, distance) for every pair within the distance, sorted (as ``HammingIndex``)."""
        rows = _as_rows(rows, "rows")
        if len(rows) and rows.shape[1] != self.nbytes:
            raise ValueError(f"rows must have {self.nbytes} bytes, not {rows.shape[1]}")
        found: list[np.ndarray] = []
        for start in range(0, len(rows) if len(self) and self.d >= 0 else 0, self.BLOCK):
            block = _padded(rows[start : start + self.BLOCK], self._words)
            pairs = self._block(block)
            pairs[:, 0] += start
            found.append(pairs)
        if not found:
            return []
        pairs = np.unique(np.concatenate(found), axis=0)
        return [tuple(p) for p in pairs.tolist()]

    def _block(self, block: np.ndarray) -> np.ndarray:
        words = block.view("<u8")
        keys = _chunk_keys(block, len(self._bits))
        out = [np.zeros((0, 3), dtype=np.int64)]
        for chunk, table in enumerate(self._tables):
            if table is None:
                continue
            window_radius, partner, counts, starts, owners = table
            key = keys[:, chunk]
            length = counts[key]
            row = np.flatnonzero(length)  # most rows meet no ball at all
            if not len(row):
                continue
            length, first = length[row].astype(np.intp), starts[key[row]].astype(np.intp)
            if length.max() > 1:  # a ball value several indexed hashes share: one pair each
                row = np.repeat(row, length)
                ends = np.cumsum(length)
                first = np.repeat(first - ends + length, length) + np.arange(int(ends[-1]))
            hit = owners[first]
            near = np.bitwise_count(key[row].astype(np.intp) ^ self._keys[hit, chunk])
            if partner >= 0:  # the window's two chunks together within its radius
                near = near + np.bitwise_count(keys[row, partner].astype(np.intp) ^ self._keys[hit, partner])
            keep = np.flatnonzero(near <= window_radius)
            row, hit = row[keep], hit[keep]
            distance = np.bitwise_count(words[row] ^ self._hashes[hit]).sum(axis=1, dtype=np.int64)
            keep = np.flatnonzero(distance <= self.d)
            out.append(np.stack([row[keep], hit[keep], distance[keep]], axis=1))
        return np.concatenate(out)
