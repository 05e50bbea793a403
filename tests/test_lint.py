"""ruff (lint and format) and mypy, as configured in pyproject.toml, pass on the whole tree.

They run here so that the README's test command, which CI runs, checks them too.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

CHECKS = {
    "ruff lint": ("ruff", "check", "--no-cache", "."),
    "ruff format": ("ruff", "format", "--check", "--no-cache", "."),
    "mypy": ("mypy", "--no-incremental"),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_tree_passes(name):
    tool, *arguments = CHECKS[name]
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", tool, *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{name} found problems:\n{result.stdout}{result.stderr}"
