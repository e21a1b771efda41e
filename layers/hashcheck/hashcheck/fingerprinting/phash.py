"""pHash as imagehash defines it, in numpy alone.

imagehash.phash is the definition (and the tests hold us to it bit for bit), but it pulls in scipy
for one 32x32 DCT, which would push the Lambda layer over its 250 MB limit. A DCT-II of a 32x32
block is one small matrix product, so we compute it that way.

imagehash: grey image -> LANCZOS resize to 32x32 -> 2-D DCT-II (scipy.fftpack, unnormalised) ->
top-left 8x8 -> bit = coefficient > median of those 64 -> hex, first bit most significant.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 32
LOW = 8


def _dct_rows(n: int, k: int) -> np.ndarray:
    """The first k rows of the unnormalised DCT-II matrix (scipy.fftpack.dct's type 2 convention)."""
    j = np.arange(n)
    return 2.0 * np.cos(np.pi * np.outer(np.arange(k), 2 * j + 1) / (2 * n))


_D = _dct_rows(SIZE, LOW)
# Reversing the samples multiplies DCT-II coefficient k by (-1)**k: mirrors cost a sign flip.
_SIGN = (-1.0) ** np.arange(LOW)


def grey32(image: Image.Image) -> np.ndarray:
    """The 32x32 grey pixels pHash is taken from (float64, as imagehash hands them to the DCT)."""
    grey = image if image.mode == "L" else image.convert("L")
    return np.asarray(grey.resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.float64)


def low_dct(pixels: np.ndarray) -> np.ndarray:
    """The 8x8 lowest-frequency DCT-II coefficients of a 32x32 block."""
    return _D @ pixels @ _D.T


def to_hex(coefficients: np.ndarray) -> str:
    bits = (coefficients > np.median(coefficients)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def phash(image: Image.Image) -> str:
    """imagehash.phash(image), as its 16-digit hex string."""
    return to_hex(low_dct(grey32(image)))


def dihedral(pixels: np.ndarray) -> dict[str, str]:
    """pHash of the 8 rotations/mirrors of the image, from one DCT (names as in hashcheck.fingerprinting.pdq).

    Resizing commutes with these transforms, so transforming the 32x32 block equals hashing the
    transformed upload. In the DCT, a left-right mirror negates odd columns, an up-down mirror odd
    rows, and a transpose swaps the axes.
    """
    c = low_dct(pixels)
    fx = c * _SIGN[None, :]  # mirror left-right
    fy = c * _SIGN[:, None]  # mirror top-bottom
    r180 = fx * _SIGN[:, None]
    variants = {
        "original": c,
        "flip_x": fx,
        "flip_y": fy,
        "rotate180": r180,
        "transpose": c.T,
        "transverse": r180.T,
        # np.rot90 (counter-clockwise) = transpose, then mirror top-bottom; clockwise: then left-right.
        "rotate90": (c.T) * _SIGN[:, None],
        "rotate270": (c.T) * _SIGN[None, :],
    }
    return {name: to_hex(v) for name, v in variants.items()}
