"""Fixtures shared by the whole suite.

``shared_dir`` is the project's ``../shared`` material (vocabulary, conformance data, corpus);
tests that need it skip cleanly when it is absent. Everything else runs on small models made here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_path() -> Path:
    """Where ``../shared`` is: ``WHYMOJI_SHARED`` if set, else beside the checkout."""
    return Path(os.environ.get("WHYMOJI_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "deepmoji" / "vocabulary.json").is_file():
        pytest.skip(f"shared material not found at {path}")
    return path
