"""The README's two commands are what users and CI run: keep them right and in step."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def readme_commands() -> list[str]:
    """The one-line shell commands of the README's Install section."""
    readme = (REPO_ROOT / "README.md").read_text()
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", install)


def test_both_install_commands_take_the_cpu_build_of_torch_first():
    commands = readme_commands()
    assert len(commands) == 2
    for command in commands:
        steps = command.split(" && ")
        assert steps[0] == "python3 -m venv .venv"
        assert steps[1].startswith(".venv/bin/pip install torch==2.13.0 ") and CPU_INDEX in steps[1]
        assert "--retries 1 --timeout 10" in steps[1]  # an unreachable index costs seconds
        assert steps[2].startswith(".venv/bin/pip install -e ")


def test_ci_runs_the_readmes_test_command_verbatim():
    test_command = next(command for command in readme_commands() if "pytest" in command)
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
