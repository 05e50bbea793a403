"""The `whymoji` command as a user meets it: quick help, one-line errors, never a traceback."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT, free_port
from tests.fake_hub import FakeHub


def clean_environ(**extra: str) -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("WHYMOJI_", "HF_", "NO_COLOR")) and name != "DISCORD_TOKEN"
    }
    return environ | extra


def python(code: str, environ: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=environ or clean_environ(),
        **options,
    )


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["predict", "--help"], ["why", "--device", "mps", "hi"], ["bogus"], []],
    ids=["help", "version", "predict-help", "usage-error", "unknown-command", "no-command"],
)
def test_help_version_and_usage_errors_import_neither_torch_nor_discord(argv):
    assert modules_loaded_by(argv, ("torch", "discord")) == []


def modules_loaded_by(argv: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` ``whymoji ARGV`` imports, in a fresh interpreter (usage errors included)."""
    done = python(
        "import sys\n"
        "from bot.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([name for name in {modules!r} if name in sys.modules])\n"
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.splitlines()[-1])


def test_huggingface_hub_warnings_are_printed_once(small_model_dir, tmp_path):
    """A Hub answering 500 makes huggingface_hub retry, warning each time: once per retry."""
    hub = FakeHub.from_folder(small_model_dir, fail_head={"pytorch_model.bin": 500}).start()
    try:
        done = python(
            "import huggingface_hub.utils._http as http\n"
            "http.time.sleep = lambda seconds: None  # its back-off, seconds per retry\n"
            "from bot.cli import main\n"
            f"raise SystemExit(main(['download', '--repo-id', {hub.repo_id!r}, '--cache-dir', {str(tmp_path)!r}]))\n",
            clean_environ(HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_PROGRESS_BARS="1"),
        )
    finally:
        hub.stop()
    assert done.returncode == 1, done.stderr
    retries = [line for line in done.stderr.splitlines() if "Retrying in" in line]
    assert len(retries) == 5 and len({line.split("Retrying in")[1] for line in retries}) == 5
    assert all(" WARNING huggingface_hub" in line for line in retries)  # through our log format


def test_an_unwritable_output_is_one_error_line(small_model_dir):
    weights, vocabulary = small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "predict", "--weights", str(weights), "--vocabulary", str(vocabulary), "hi"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            env=clean_environ(),
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["whymoji: error: cannot write the results: No space left on device"]


def bad_invocations(tmp_path: Path, model: list[str]) -> list[tuple[list[str], dict[str, str]]]:
    """(arguments, environment) pairs, each wrong in its own way, for every subcommand."""
    folder_as_config = str(tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    bad_configs = {}
    for name, data in {
        "latin-1": "[reactions]\ntop_k = 2 # é\n".encode("latin-1"),
        "utf-16": "[reactions]\ntop_k = 2\n".encode("utf-16"),
        "utf-8-bom": b"\xef\xbb\xbf[reactions]\n",
        "binary": bytes(range(256)),
    }.items():
        bad_configs[name] = str(tmp_path / f"{name}.toml")
        Path(bad_configs[name]).write_bytes(data)
    offline = {"HF_HUB_OFFLINE": "1"}
    return [
        ([], {}),
        (["bogus"], {}),
        (["predict", "--device", "mps", "hi"], {}),
        (["predict", "--device", "xpu", "hi"], {}),
        (["predict", "--device", "meta", "hi"], {}),
        (["predict", "--device", "CPU", "hi"], {}),
        (["predict", "--device", "gpu", "hi"], {}),
        (["predict", "--repo-id", "x/y/z", "hi"], {}),
        (["predict", "--top", "0", "hi"], {}),
        (["predict", "--threads", "many", "hi"], {}),
        (["predict", "--weights", str(tmp_path / "missing.bin"), "hi"], {}),
        (["predict", *model, "   "], {}),
        (["predict", "--offline", *cache, "hi"], {}),
        (["why"], {}),
        (["why", "--method", "magic", "hi"], {}),
        (["why", "--device", "mps", "hi"], {}),
        (["why", "--repo-id", "not a repo", "hi"], {}),
        (["why", *model, "   "], {}),
        (["download", "--repo-id", "not a repo"], {}),
        (["download", *cache], offline),
        (["run"], {"WHYMOJI_MODEL_REPO_ID": "not a repo"}),
        (["run"], {"WHYMOJI_REACTOINS_TOP_K": "5"}),
        (["run", "--config", folder_as_config], {}),
        (["run"], {}),  # no token
        (["check", "--config", str(tmp_path / "missing.toml")], {"WHYMOJI_MODEL_REPO_ID": "x/y/z"}),
        (["check"], {"WHYMOJI_DATABASE_URL": "mysql://x/y", "WHYMOJI_HEALTH_PORT": "-1"}),
        (["check", "--config", bad_configs["latin-1"]], {}),
        (["run", "--config", bad_configs["utf-16"]], {}),
        (["predict", *model, "--config", bad_configs["utf-8-bom"], "hi"], {}),
        (["why", *model, "--config", bad_configs["binary"], "hi"], {}),
        (["download", "--config", bad_configs["latin-1"]], {}),
        (["agreement", "--config", bad_configs["utf-16"], bad_configs["latin-1"]], {}),
        (["predict", *model, "hi"], {"WHYMOJI_OFFLINE": "maybe"}),
        (["predict", *model, "hi"], {"WHYMOJI_MODEL_OFFLINE": "maybe"}),
        (["predict", *model, "--config", str(tmp_path / "missing.toml"), "hi"], {}),
        (["why", *model, "hi"], {"WHYMOJI_CONFIG": str(tmp_path / "missing.toml")}),
        (["download"], {"WHYMOJI_CACHE_DIR": str(tmp_path)}),
        (["check"], {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}),
    ] + ([(["predict", *model, "--device", "cuda", "hi"], {})] if not torch.cuda.is_available() else [])


def test_no_subcommand_shows_a_traceback_whatever_it_is_given(tmp_path, small_model_dir):
    model = [
        "--weights",
        str(small_model_dir / "pytorch_model.bin"),
        "--vocabulary",
        str(small_model_dir / "vocabulary.json"),
    ]

    def attempt(argv: list[str], settings: dict[str, str]) -> str | None:
        """What went wrong with one invocation, or None if it failed the way it should."""
        environ = clean_environ(HF_HOME=str(tmp_path / "hf-home"), WHYMOJI_HEALTH_PORT=str(free_port())) | settings
        done = subprocess.run(
            [sys.executable, "-m", "bot", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=environ | {"PYTHONPATH": str(REPO_ROOT)},
            stdin=subprocess.DEVNULL,
        )
        output = done.stdout + done.stderr
        # One-line errors; `check` reports its findings as PROBLEM lines instead.
        errors = [line for line in output.splitlines() if line.startswith("whymoji: error: ") or ": PROBLEM: " in line]
        if done.returncode == 0 or "Traceback" in output or "Exception ignored" in output or not errors:
            return f"whymoji {' '.join(argv)} {settings}: exit {done.returncode}\n{output}"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:  # each is a process: run a few at a time
        outcomes = list(pool.map(lambda case: attempt(*case), bad_invocations(tmp_path, model)))
    failures = [outcome for outcome in outcomes if outcome]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("command", [["download"], ["predict", "hi"], ["why", "hi"]])
def test_an_unreachable_hub_is_one_line_at_once_naming_both_files_and_the_address(tmp_path, command):
    """No retries (huggingface_hub would wait 1+2+4+8+8 s), no 'no data' warning, one line."""
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "bot", *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=clean_environ(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(REPO_ROOT)),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"whymoji: error: cannot reach the Hugging Face Hub at {endpoint} (connection refused) to download "
        "pytorch_model.bin (~85 MB) and vocabulary.json (~1 MB) of Pendrokar/TorchMoji: set model.weights and "
        "model.vocabulary (--weights, --vocabulary) to local copies of pytorch_model.bin and vocabulary.json, or "
        "run `whymoji download` where the Hub can be reached (into the same model.cache_dir)"
    ]
