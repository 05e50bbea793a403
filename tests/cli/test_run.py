"""`whymoji run` as the container runs it: a real process, a fake Hub, a fake Discord, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import run_bot
from bot.cli import main
from bot.config import load_config
from bot.errors import WhymojiError
from bot.serving.discord_proxy import current_endpoints, use_endpoints
from tests.conftest import REPO_ROOT, free_port
from tests.fake_discord import FakeDiscord
from tests.fake_hub import FakeHub
from tests.test_app import wait_healthy


def clean_environ(**extra: str) -> dict[str, str]:
    """This machine's environment without anything that configures whymoji or the Hub."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("WHYMOJI_", "HF_")) and name != "DISCORD_TOKEN"
    }
    return environ | extra


def first_start_environ(tmp_path: Path, hub: FakeHub, fake: FakeDiscord, port: int) -> dict[str, str]:
    """A container's first start: empty model cache, token in the environment."""
    return clean_environ(
        DISCORD_TOKEN=fake.token,
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        WHYMOJI_MODEL_REPO_ID=hub.repo_id,
        WHYMOJI_MODEL_CACHE_DIR=str(tmp_path / "models"),
        WHYMOJI_DATABASE_URL=f"sqlite:///{tmp_path / 'whymoji.sqlite3'}",
        WHYMOJI_HEALTH_PORT=str(port),
        WHYMOJI_DISCORD_API_BASE_URL=fake.api_base_url,
        WHYMOJI_DISCORD_GATEWAY_URL=fake.gateway_url,
        WHYMOJI_DISCORD_SYNC_COMMANDS="false",
    )


@asynccontextmanager
async def whymoji_process(environ: dict[str, str], log: Path, *args: str):
    """`python -m bot run ARGS` with its output in ``log``; killed if the test leaves it running."""
    with open(log, "wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            *args,
            env=environ,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=output,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_first_start_downloads_the_model_connects_and_stops_cleanly_on_sigterm(tmp_path, hub):
    port = free_port()
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        async with whymoji_process(first_start_environ(tmp_path, hub, fake, port), log) as process:
            body = await wait_healthy(port, timeout=60, alive=lambda: process.returncode is None)
            assert body["status"] == "ready" and body["shards"]["0"]["connected"]
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
    output = log.read_text()
    downloads = [path for method, path, _ in hub.requests if method == "GET" and "/api/" not in path]
    assert len(downloads) == 2  # the weights (through the LFS redirect) and the vocabulary, once each
    cached = {path.name for path in (tmp_path / "models").rglob("*") if path.is_file()}
    assert {"pytorch_model.bin", "vocabulary.json"} <= cached
    assert "model files not found locally: downloading pytorch_model.bin (~85 MB) and vocabulary.json" in output
    assert "SIGTERM received" in output and "bot.app: shut down" in output
    assert fake.token not in output
    assert "voice will NOT be supported" not in output  # the bot has no voice: no PyNaCl/davey noise


@pytest.mark.parametrize(
    ("args", "settings", "reason"),
    [(("--offline",), {}, "offline mode is on"), ((), {"WHYMOJI_MODEL_OFFLINE": "true"}, "offline mode is on")],
)
async def test_missing_files_without_downloads_is_one_clear_line(tmp_path, hub, args, settings, reason):
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        environ = first_start_environ(tmp_path, hub, fake, free_port()) | settings
        async with whymoji_process(environ, log, *args) as process:
            assert await asyncio.wait_for(process.wait(), 60) == 1
    last = log.read_text().rstrip().splitlines()[-1]
    assert last.startswith("whymoji: error: ") and reason in last and "whymoji download" in last
    assert not [path for _, path, _ in hub.requests if "/resolve/" in path or "/cdn/" in path]


def local_model_environ(tmp_path: Path, small_model_dir: Path, fake: FakeDiscord, **settings: str) -> dict[str, str]:
    """A deployment with the model files at hand, against a fake Discord that takes its token."""
    return (
        clean_environ(
            DISCORD_TOKEN=fake.token,
            HF_HOME=str(tmp_path / "hf-home"),
            WHYMOJI_MODEL_WEIGHTS=str(small_model_dir / "pytorch_model.bin"),
            WHYMOJI_MODEL_VOCABULARY=str(small_model_dir / "vocabulary.json"),
            WHYMOJI_DATABASE_URL=f"sqlite:///{tmp_path / 'settings.sqlite3'}",
            WHYMOJI_HEALTH_PORT=str(free_port()),
            WHYMOJI_DISCORD_API_BASE_URL=fake.api_base_url,
            WHYMOJI_DISCORD_GATEWAY_URL=fake.gateway_url,
            WHYMOJI_DISCORD_SYNC_COMMANDS="false",
        )
        | settings
    )


@pytest.mark.parametrize(
    ("label", "settings"),
    [
        ("store", {"WHYMOJI_DATABASE_URL": "sqlite:////proc/whymoji/settings.sqlite3"}),
        ("model", {"WHYMOJI_MODEL_WEIGHTS": "/nowhere/pytorch_model.bin"}),
        ("health", {"WHYMOJI_HEALTH_HOST": "no-such-host.invalid"}),
    ],
)
async def test_a_broken_setup_fails_before_connecting_with_the_words_of_check(
    tmp_path, small_model_dir, monkeypatch, capsys, label, settings
):
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        environ = local_model_environ(tmp_path, small_model_dir, fake, **settings)
        async with whymoji_process(environ, log) as process:
            assert await asyncio.wait_for(process.wait(), 60) == 1
        assert fake.gateway.connections == [], "the gateway is never reached"
    output = log.read_text()
    last = output.rstrip().splitlines()[-1]
    assert last.startswith("whymoji: error: ") and "Discord" not in last and "Traceback" not in output
    assert "model loaded" not in output or label == "model"

    for name in [name for name in os.environ if name.startswith(("WHYMOJI_", "HF_"))]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["check"]) == 1  # check runs its own event loop
    [problem] = [line for line in capsys.readouterr().out.splitlines() if "PROBLEM" in line]
    assert problem == f"  {label}: PROBLEM: {last.removeprefix('whymoji: error: ')}"


@pytest.mark.parametrize("token", ["your-bot-token", "not-the-token"])
async def test_a_refused_token_fails_on_the_token_before_the_model_is_downloaded(tmp_path, hub, token):
    """The README's placeholder too: Discord is asked first, the Hub never."""
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        environ = first_start_environ(tmp_path, hub, fake, free_port()) | {"DISCORD_TOKEN": token}
        async with whymoji_process(environ, log) as process:
            assert await asyncio.wait_for(process.wait(), 60) == 1
        assert fake.gateway.connections == []
    output = log.read_text()
    assert output.rstrip().splitlines()[-1] == (
        "whymoji: error: Discord refused the bot token (Improper token has been passed.): "
        "check DISCORD_TOKEN or discord.token_file"
    )
    assert hub.requests == [], "nothing asked of the Hub, let alone downloaded"
    assert "Traceback" not in output and token not in output


async def test_an_unreachable_discord_fails_before_the_model_is_downloaded(tmp_path, hub):
    port = free_port()  # nothing listens there
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        environ = first_start_environ(tmp_path, hub, fake, free_port()) | {
            "WHYMOJI_DISCORD_API_BASE_URL": f"http://127.0.0.1:{port}/api/v10"
        }
    async with whymoji_process(environ, log) as process:
        assert await asyncio.wait_for(process.wait(), 60) == 1
    last = log.read_text().rstrip().splitlines()[-1]
    assert last.startswith("whymoji: error: cannot reach Discord: ") and str(port) in last
    assert hub.requests == []


async def test_an_unreachable_hub_fails_run_at_once_in_one_line(tmp_path, hub):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        environ = first_start_environ(tmp_path, hub, fake, free_port()) | {"HF_ENDPOINT": endpoint}
        async with whymoji_process(environ, log) as process:
            assert await asyncio.wait_for(process.wait(), 60) == 1
    output = log.read_text()
    last = output.rstrip().splitlines()[-1]
    assert last.startswith(f"whymoji: error: cannot reach the Hugging Face Hub at {endpoint} (connection refused)")
    assert "pytorch_model.bin (~85 MB) and vocabulary.json (~1 MB)" in last and "whymoji download" in last
    assert "Retrying" not in output and "no data" not in output and "Traceback" not in output


async def test_ctrl_c_stops_a_first_start_stuck_on_a_silent_hub(tmp_path, hub):
    """The download thread must not keep the process alive (a second signal is test_app's)."""
    hub.stall_head.add("pytorch_model.bin")  # accepts the connection, never answers
    log = tmp_path / "run.log"
    async with FakeDiscord() as fake:
        async with whymoji_process(first_start_environ(tmp_path, hub, fake, free_port()), log) as process:
            await wait_for_line(log, "model files not found locally: downloading", process)
            process.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(process.wait(), 15) == 0
    output = log.read_text()
    assert "SIGINT received" in output and "stopped before connecting" in output
    assert "Traceback" not in output


async def wait_for_line(log: Path, text: str, process, timeout: float = 60.0) -> None:
    """Until ``text`` appears in the process's log (it fails if the process ends first)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in log.read_text():
        assert process.returncode is None, log.read_text()
        assert asyncio.get_running_loop().time() < deadline, f"{text!r} not logged within {timeout} s"
        await asyncio.sleep(0.1)


def test_a_missing_token_is_one_line_naming_discord_token(monkeypatch, capsys):
    for name in [name for name in os.environ if name.startswith("WHYMOJI_") or name == "DISCORD_TOKEN"]:
        monkeypatch.delenv(name)
    assert main(["run"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "DISCORD_TOKEN" in captured.err and "token_file" in captured.err


async def test_a_wrong_token_is_a_clear_error(tmp_path, small_model_dir):
    before = current_endpoints()
    try:
        async with FakeDiscord() as fake:
            config = load_config(
                None,
                clean_environ(
                    DISCORD_TOKEN="not-the-token",
                    WHYMOJI_DISCORD_API_BASE_URL=fake.api_base_url,
                    WHYMOJI_DISCORD_GATEWAY_URL=fake.gateway_url,
                    WHYMOJI_HEALTH_ENABLED="false",
                    WHYMOJI_MODEL_WEIGHTS=str(small_model_dir / "pytorch_model.bin"),
                    WHYMOJI_MODEL_VOCABULARY=str(small_model_dir / "vocabulary.json"),
                    WHYMOJI_DATABASE_URL=f"sqlite:///{tmp_path / 's.sqlite3'}",
                ),
            )
            with pytest.raises(WhymojiError, match="Discord refused the bot token"):
                await run_bot(config)
    finally:
        use_endpoints(before.api_base_url, before.gateway_url)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_environment_is_a_valid_config_for_the_container(tmp_path):
    """The image's ENV, read by the real config loader: health on all interfaces, data in /data."""
    instructions = dockerfile_instructions()
    runtime = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]
    environ = {}
    for name, arguments in runtime:
        if name == "ENV":
            for assignment in arguments.split():
                key, _, value = assignment.partition("=")
                environ[key] = value
    config = load_config(None, environ)
    assert (config.health.host, config.health.port) == ("0.0.0.0", 8080)
    assert config.database.url == "sqlite:////data/whymoji.sqlite3"
    assert str(config.model.cache_dir) == "/data/models"
    assert ("VOLUME", "/data") in runtime and ("EXPOSE", "8080") in runtime


def test_the_image_bakes_the_model_into_the_cache_every_command_reads():
    """`whymoji download` in the build stage reads the setting, like every command at run time."""
    instructions = dockerfile_instructions()
    stages = [i for i, (name, _) in enumerate(instructions) if name == "FROM"]
    build, runtime = instructions[stages[0] : stages[1]], instructions[stages[1] :]

    def cache_dir(stage):
        assignments = [a for name, arguments in stage if name == "ENV" for a in arguments.split()]
        return dict(a.partition("=")[::2] for a in assignments)["WHYMOJI_MODEL_CACHE_DIR"]

    assert cache_dir(build) == cache_dir(runtime) == "/data/models"
    [bake] = [arguments for name, arguments in build if name == "RUN" and "whymoji download" in arguments]
    assert "--cache-dir" not in bake


def test_the_image_is_cpu_only_non_root_and_runs_whymoji_with_a_healthcheck():
    instructions = dockerfile_instructions()
    stages = [arguments for name, arguments in instructions if name == "FROM"]
    assert len(stages) == 2 and all(stage.startswith("python:3.11-slim") for stage in stages)
    runs = " ".join(arguments for name, arguments in instructions if name == "RUN")
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in runs
    users = [arguments for name, arguments in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    entry = dict(instructions)
    assert (entry["ENTRYPOINT"], entry["CMD"]) == ('["whymoji"]', '["run"]')
    assert entry["HEALTHCHECK"].endswith('CMD ["python", "-m", "bot.serving.health"]')


def test_compose_uses_the_same_healthcheck_an_env_file_and_the_data_volume():
    yaml = pytest.importorskip("yaml")
    service = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())["services"]["whymoji"]
    assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "bot.serving.health"]
    assert service["env_file"] == ".env" and service["restart"] == "unless-stopped"
    assert any(volume.endswith(":/data") for volume in service["volumes"])


def test_the_license_file_is_the_license_pyproject_names():
    import tomllib

    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    license_text = (REPO_ROOT / "LICENSE").read_text()
    assert declared == "MIT" and license_text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in license_text
