"""Shared fixtures. The package is installed with `pip install -e .[dev]`; the path line below also
lets the tests run from a bare checkout."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))

DATA = Path(__file__).resolve().parent / "data"
PHOTOS = sorted((DATA / "photos").glob("*.jpg"))


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """Ordinary wallpaper photos (Debian packages) that the tests pretend are on a list."""
    return PHOTOS
