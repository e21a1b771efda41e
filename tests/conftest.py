"""Shared fixtures. The package is installed with `pip install -e .[dev]`; the path line below also
lets the tests run from a bare checkout."""

import os
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


@pytest.fixture(autouse=True)
def _environment_restored():
    """The sandbox sets a function's environment the way Lambda would (os.environ); no test may leak
    it into the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
