"""A Hugging Face Space's entry point: the page on the model the configuration names, and the
README's instructions for a Space in step with the project."""

from __future__ import annotations

import re
import tomllib

from tests.cli.test_cli import clean_environ, python
from tests.conftest import REPO_ROOT


def space_environ(small_model_dir, **extra: str) -> dict[str, str]:
    return clean_environ(
        WHYMOJI_MODEL_WEIGHTS=str(small_model_dir / "pytorch_model.bin"),
        WHYMOJI_MODEL_VOCABULARY=str(small_model_dir / "vocabulary.json"),
        WHYMOJI_MODEL_OFFLINE="true",
        **extra,
    )


def test_the_space_serves_demo_on_the_configured_model(small_model_dir):
    done = python(
        "import gradio\n"
        "from bot.demo import space\n"
        "from bot.demo.page import explain_text\n"
        "print(isinstance(space.demo, gradio.Blocks), space.engine.max_tokens)\n"
        "print(explain_text(space.engine, 'i love you so much !!').explanation.reading.truncated)\n",
        space_environ(small_model_dir, WHYMOJI_MODEL_MAX_TOKENS="3"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True 3", "True"]  # model.max_tokens is the bot's, from the environment


def test_a_configuration_mistake_stops_the_space_in_words(small_model_dir):
    done = python("import bot.demo.space\n", space_environ(small_model_dir, WHYMOJI_MODEL_MAX_TOKENS="0"))
    assert done.returncode == 1
    assert done.stderr.startswith("whymoji: error: WHYMOJI_MODEL_MAX_TOKENS: ")
    assert "Traceback" not in done.stderr


def readme_space_files() -> dict[str, str]:
    """The files the README's Space section tells to add: name -> content."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### On a Hugging Face Space", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^`([\w.]+)`[^\n]*:\n\n```\w*\n(.+?)\n```", section, re.DOTALL | re.MULTILINE))


def test_the_readme_tells_a_space_the_projects_requirements_and_entry_point():
    files = readme_space_files()
    assert set(files) == {"README.md", "app.py", "requirements.txt"}
    assert files["app.py"] == "from bot.demo.space import launch\n\nlaunch()"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [line for line in files["requirements.txt"].splitlines() if not line.startswith("-")]
    dependencies = [d for d in project["dependencies"] if not d.startswith("torch")]
    assert requirements == ["torch==2.13.0", *dependencies]  # the CPU build, as the README installs it
    gradio = next(d for d in project["optional-dependencies"]["demo"] if d.startswith("gradio"))
    version = re.search(r"sdk_version: (\S+)", files["README.md"]).group(1)
    assert re.fullmatch(r"gradio>=([\d.]+),<(\d+)", gradio), gradio
    low, high = re.fullmatch(r"gradio>=([\d.]+),<(\d+)", gradio).groups()
    as_tuple = tuple(int(part) for part in version.split("."))
    assert tuple(int(part) for part in low.split(".")) <= as_tuple < (int(high),)
