"""Fixtures for every test; shared helpers that are not fixtures live in tests/helpers.py."""

import os
from pathlib import Path

import pytest

from tests.helpers import PHOTOS


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
