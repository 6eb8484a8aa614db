"""Shared fixtures: the data folder beside the repository, tiny images, an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VISIONKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(name: str) -> Path:
    """``../shared/data/<name>``, or skip the test with the reason when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"needs the shared data set {path} (not present on this machine)")
    return path


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh VISIONKIT_HOME for tests that write to the cache."""
    monkeypatch.setenv("VISIONKIT_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One cache shared by the whole session, so the default model is converted once."""
    path = os.environ.get("VISIONKIT_TEST_CACHE") or str(tmp_path_factory.mktemp("visionkit-cache"))
    os.environ["VISIONKIT_HOME"] = path
    return Path(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
