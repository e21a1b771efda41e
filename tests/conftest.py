"""Shared fixtures. The package is installed with `pip install -e .[dev]`; the path line below also
lets the tests run from a bare checkout."""

import contextlib
import os
import sys
from pathlib import Path

import pytest
from moto import mock_aws

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


@contextlib.contextmanager
def mocked_aws(region: str = "us-east-1"):
    """moto's mock with fake credentials for its duration, so no test can reach real AWS."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", region)
        env.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield
