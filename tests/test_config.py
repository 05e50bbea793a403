"""Configuration: defaults, TOML, environment overrides, validation and the hidden token."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from bot.config import Config, ConfigError, load_config, options, redact_url, sections

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "config.example.toml"


def write(tmp_path: Path, body: str) -> Path:
    config_path = tmp_path / "config.toml"
    config_path.write_text(body)
    return config_path


def test_no_file_gives_the_documented_defaults():
    config = load_config(None, environ={})
    assert config == Config()
    assert config.reactions.top_k == 3
    assert config.worker.max_wait_ms == 5.0
    assert config.database.url == "sqlite:///data/whymoji.sqlite3"
    assert config.discord.shard_ids is None
    assert config.discord.token is None


def test_file_values_are_read_and_typed(tmp_path):
    config_path = write(
        tmp_path,
        """
        [discord]
        api_base_url = "http://127.0.0.1:9999/api/v10"
        shard_count = 4
        shard_ids = [1, 3]
        [model]
        weights = "models/w.bin"
        [moderation]
        cooldown_s = 60
        [logging]
        level = "debug"
        """,
    )
    config = load_config(config_path, environ={})
    assert config.discord.api_base_url == "http://127.0.0.1:9999/api/v10"
    assert config.discord.shard_ids == (1, 3)
    assert config.model.weights == Path("models/w.bin")
    assert config.moderation.cooldown_s == 60.0 and isinstance(config.moderation.cooldown_s, float)
    assert config.logging.level == "DEBUG"
    assert config.reactions == Config().reactions


def test_environment_overrides_the_file_with_typed_values(tmp_path):
    config_path = write(tmp_path, "[reactions]\ntop_k = 2\n[discord]\nshard_count = 3\n")
    environ = {
        "WHYMOJI_REACTIONS_TOP_K": "7",
        "WHYMOJI_REACTIONS_THRESHOLD": "0.25",
        "WHYMOJI_DISCORD_SHARD_IDS": "0,2",
        "WHYMOJI_DISCORD_SYNC_COMMANDS": "no",
        "WHYMOJI_DATABASE_URL": "postgresql://bot@db.example:5432/whymoji",
        "WHYMOJI_CONFIG": "/elsewhere/config.toml",  # read by the commands, not a setting
    }
    config = load_config(config_path, environ=environ)
    assert config.reactions.top_k == 7
    assert config.reactions.threshold == 0.25
    assert config.discord.shard_count == 3
    assert config.discord.shard_ids == (0, 2)
    assert config.discord.sync_commands is False
    assert config.database.url == "postgresql://bot@db.example:5432/whymoji"


def test_reaction_rules_default_and_read_emojis_as_typed(tmp_path):
    defaults = Config().reactions
    assert (defaults.min_known, defaults.blocked, defaults.distress, defaults.chance) == (0.5, {42}, 0.5, 100)
    config_path = write(tmp_path, '[reactions]\nblocked = ["💀😈", "❤️"]\nmin_known = 1\nchance = 0\n')
    config = load_config(config_path, environ={})
    assert config.reactions.blocked == {51, 44, 8}
    assert (config.reactions.min_known, config.reactions.chance) == (1.0, 0)
    assert load_config(write(tmp_path, "[reactions]\nblocked = []\n"), environ={}).reactions.blocked == set()
    from_environment = load_config(config_path, environ={"WHYMOJI_REACTIONS_BLOCKED": "🔫, 🤍"})
    assert from_environment.reactions.blocked == {42, 47}
    assert load_config(None, environ={"WHYMOJI_REACTIONS_BLOCKED": ""}).reactions.blocked == set()


def test_an_empty_environment_value_unsets_an_optional_key(tmp_path):
    config_path = write(tmp_path, '[model]\nrevision = "v1"\n')
    assert load_config(config_path, environ={}).model.revision == "v1"
    assert load_config(config_path, environ={"WHYMOJI_MODEL_REVISION": ""}).model.revision is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[reactions]\ntop_k = 0\n", "reactions.top_k: must be an integer from 1 to 10, got 0"),
        ("[reactions]\ntop_k = true\n", "reactions.top_k: must be an integer"),
        ("[reactions]\nthreshold = 1.5\n", "reactions.threshold: must be a number from 0 to 1"),
        ("[reactions]\ntopk = 3\n", "reactions.topk: unknown key"),
        ("[reaction]\ntop_k = 3\n", "reaction: unknown section"),
        ("reactions = 3\n", "reactions: must be a [reactions] table"),
        ('[model]\ndevice = "tpu"\n', "model.device: must be one of cpu, cuda"),
        ("[health]\nport = 70000\n", "health.port: must be an integer from 0 to 65535"),
        ('[database]\nurl = "mysql://x/y"\n', "database.url: must be a URL starting with sqlite://"),
        ("[discord]\nshard_ids = [0, 0]\nshard_count = 2\n", "discord.shard_ids: must be a non-empty list"),
        ("[discord]\nshard_ids = [[0]]\nshard_count = 2\n", "discord.shard_ids: must be a non-empty list"),
        ("[discord]\nshard_ids = [0]\n", "discord.shard_ids: needs discord.shard_count"),
        ("[discord]\nshard_ids = [2]\nshard_count = 2\n", "discord.shard_ids: every id must be below"),
        ('[discord]\napi_base_url = "127.0.0.1:8080"\n', "discord.api_base_url: must be a URL"),
        ("[worker]\nmax_wait_ms = nan\n", "worker.max_wait_ms: must be a number"),
        ("[worker\n", "not valid TOML"),
        ("[reactions]\nmin_known = 2\n", "reactions.min_known: must be a number from 0 to 1"),
        ("[reactions]\ndistress = -1\n", "reactions.distress: must be a number from 0 to 1"),
        ("[reactions]\nchance = 101\n", "reactions.chance: must be an integer from 0 to 100"),
        ('[reactions]\nblocked = ["🔫", "gun"]\n', "reactions.blocked: not one of DeepMoji's 64 emojis: gun"),
        ('[reactions]\nblocked = "🔫"\n', "reactions.blocked: must be a list of emojis"),
        ("[reactions]\nblocked = [42]\n", "reactions.blocked: must be a list of emojis"),
    ],
)
def test_bad_file_values_name_the_key_and_the_problem(tmp_path, body, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, body), environ={})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WHYMOJI_REACTIONS_TOP_K", "many", "WHYMOJI_REACTIONS_TOP_K: must be an integer from 1 to 10"),
        ("WHYMOJI_HEALTH_ENABLED", "maybe", "WHYMOJI_HEALTH_ENABLED: must be true or false"),
        ("WHYMOJI_DISCORD_SHARD_IDS", "0,x", "WHYMOJI_DISCORD_SHARD_IDS: must be a non-empty list"),
        ("WHYMOJI_REACTIONS_TOPK", "3", "WHYMOJI_REACTIONS_TOPK: unknown setting"),
        ("WHYMOJI_REACTIONS_TOP_K", "", "WHYMOJI_REACTIONS_TOP_K: must be an integer"),
        ("WHYMOJI_DISCORD_TOKEN", "abc", "read from DISCORD_TOKEN"),
        ("WHYMOJI_REACTIONS_BLOCKED", "🔫 nope", "WHYMOJI_REACTIONS_BLOCKED: not one of DeepMoji's 64 emojis: nope"),
    ],
)
def test_bad_environment_values_name_the_variable(variable, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, environ={variable: value})


def test_every_problem_is_listed_at_once(tmp_path):
    config_path = write(
        tmp_path, "[reactions]\ntop_k = 0\nthreshold = 2\n[nosuch]\nx = 1\n[discord]\nshard_ids = [0]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_path, environ={"WHYMOJI_HEALTH_PORT": "-1", "WHYMOJI_REACTOINS_TOP_K": "5"})
    problems = caught.value.problems
    assert len(problems) == 6 and caught.value.lines() == list(problems)
    for start in (
        "reactions.top_k:",
        "reactions.threshold:",
        "nosuch: unknown section",
        "discord.shard_ids: needs discord.shard_count",
        "WHYMOJI_HEALTH_PORT:",
        "WHYMOJI_REACTOINS_TOP_K:",
    ):
        assert any(problem.startswith(start) for problem in problems), start
    assert str(caught.value) == "; ".join(problems)


def test_an_unreadable_file_and_a_bad_variable_are_both_reported(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml", environ={"WHYMOJI_MODEL_DEVICE": "gpu"})
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        f"config file {tmp_path / 'nope.toml'}",
        "WHYMOJI_MODEL_DEVICE",
    ]


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("WHYMOJI_REACTOINS_TOP_K", "did you mean WHYMOJI_REACTIONS_TOP_K?"),
        ("WHYMOJI_WEIGHT", "did you mean WHYMOJI_MODEL_WEIGHTS?"),
        ("WHYMOJI_MODEL_WEIGHT", "did you mean WHYMOJI_MODEL_WEIGHTS?"),
        ("WHYMOJI_SOMETHING", "settings are WHYMOJI_<SECTION>_<KEY>"),
    ],
)
def test_a_misspelt_variable_is_an_error_naming_it(variable, hint):
    with pytest.raises(ConfigError, match=re.escape(f"{variable}: unknown setting ({hint}")):
        load_config(None, environ={variable: "1"})


def test_variables_read_elsewhere_and_development_ones_are_not_settings(tmp_path):
    from bot.config import OTHER_VARIABLES

    assert set(OTHER_VARIABLES) == {"WHYMOJI_CONFIG", "WHYMOJI_SHARED"}
    environ = dict.fromkeys(OTHER_VARIABLES, "x") | {
        "WHYMOJI_TEST_POSTGRES_URL": "postgresql://x/y",
        "WHYMOJI_BENCH_BACKEND": "torch",
        "WHYMOJI_CI_POSTGRES": "1",
    }
    assert load_config(None, environ=environ) == Config()


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [
        ("WHYMOJI_WEIGHTS", "WHYMOJI_MODEL_WEIGHTS", "/models/pytorch_model.bin"),
        ("WHYMOJI_VOCABULARY", "WHYMOJI_MODEL_VOCABULARY", "/models/vocabulary.json"),
        ("WHYMOJI_CACHE_DIR", "WHYMOJI_MODEL_CACHE_DIR", "/data/models"),
        ("WHYMOJI_OFFLINE", "WHYMOJI_MODEL_OFFLINE", "1"),
        ("WHYMOJI_OFFLINE", "WHYMOJI_MODEL_OFFLINE", "maybe"),
    ],
)
def test_the_former_short_names_are_errors_naming_the_one_name(old, new, value):
    """One name per setting: a short name is never silently read, nor silently ignored."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={old: value})
    assert caught.value.problems == (f"{old}: now {new} (one name per setting); set that instead",)


def test_a_bad_offline_value_is_an_error():
    with pytest.raises(ConfigError, match=re.escape("WHYMOJI_MODEL_OFFLINE: must be true or false, got 'maybe'")):
        load_config(None, environ={"WHYMOJI_MODEL_OFFLINE": "maybe"})
    assert load_config(None, environ={"WHYMOJI_MODEL_OFFLINE": "yes"}).model.offline is True


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path):
    config_path = write(tmp_path, '[model]\nrepo_id = "file/repo"\nrevision = "file"\nthreads = 1\n')
    environ = {"WHYMOJI_MODEL_REVISION": "environment", "WHYMOJI_MODEL_THREADS": "2"}
    overrides = {("model", "threads"): 3}
    config = load_config(config_path, environ, overrides)
    assert (config.model.repo_id, config.model.revision, config.model.threads) == ("file/repo", "environment", 3)


def test_a_flag_is_held_to_the_rules_between_keys(tmp_path):
    config_path = write(tmp_path, '[model]\nprecision = "int8"\n')
    with pytest.raises(ConfigError, match=re.escape('model.precision: "int8" runs on ONNX Runtime on the CPU only')):
        load_config(config_path, {}, {("model", "device"): "cuda"})


def test_the_config_path_is_the_flag_else_whymoji_config(tmp_path):
    from bot.config import config_path

    assert config_path(None, {}) is None
    assert config_path(None, {"WHYMOJI_CONFIG": "  "}) is None
    assert config_path(None, {"WHYMOJI_CONFIG": "from/env.toml"}) == Path("from/env.toml")
    assert config_path("given.toml", {"WHYMOJI_CONFIG": "from/env.toml"}) == Path("given.toml")


BODY = "[reactions]\ntop_k = 2\n# é\n"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (BODY.encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 3); save it as UTF-8"),
        (BODY.encode("utf-16"), "is UTF-16 text (Windows Notepad's 'Unicode'); save it as UTF-8"),
        (BODY.encode("utf-16-be"), "looks like UTF-16 text; save it as UTF-8"),
        (b"\xef\xbb\xbf" + BODY.encode(), "starts with a UTF-8 byte-order mark, which TOML does not allow"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "binary data, not text"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "binary data, not text"),
    ],
    ids=["latin-1", "utf-16-notepad", "utf-16-no-bom", "utf-8-bom", "png", "elf"],
)
def test_a_config_file_that_is_not_utf8_is_one_problem_line(tmp_path, data, problem):
    config_path = tmp_path / "config.toml"
    config_path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(config_path, environ={"WHYMOJI_REACTIONS_TOP_K": "0"})
    first, second = caught.value.problems
    assert first.startswith(f"config file {config_path}: ") and problem in first
    assert second.startswith("WHYMOJI_REACTIONS_TOP_K:")  # the other problems are still listed


@pytest.mark.parametrize("repo_id", ["not a repo", "x/y/z", "a--b/c", "owner/name.git", ""])
def test_a_malformed_repo_id_is_a_config_error(tmp_path, repo_id):
    with pytest.raises(ConfigError, match="model.repo_id: must be a Hub repository id"):
        load_config(write(tmp_path, f'[model]\nrepo_id = "{repo_id}"\n'), environ={})
    with pytest.raises(ConfigError, match="WHYMOJI_MODEL_REPO_ID: must be a Hub repository id"):
        load_config(None, environ={"WHYMOJI_MODEL_REPO_ID": repo_id})


def test_a_good_repo_id_is_kept():
    assert load_config(None, environ={"WHYMOJI_MODEL_REPO_ID": " someone/Other-Model_2 "}).model.repo_id == (
        "someone/Other-Model_2"
    )


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_a_token_in_the_toml_is_refused_with_directions(tmp_path):
    config_path = write(tmp_path, '[discord]\ntoken = "abc.def"\n')
    with pytest.raises(ConfigError, match="DISCORD_TOKEN") as caught:
        load_config(config_path, environ={})
    assert "abc.def" not in str(caught.value)
    assert "token_file" in str(caught.value)


def test_token_from_the_environment_is_hidden_from_repr():
    config = load_config(None, environ={"DISCORD_TOKEN": " MTIz.secret.value \n"})
    assert config.discord.token == "MTIz.secret.value"
    assert "secret" not in repr(config)
    assert "secret" not in str(config.discord)


def test_token_from_token_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("file.token.value\n")
    config_path = write(tmp_path, f'[discord]\ntoken_file = "{token_file}"\n')
    assert load_config(config_path, environ={}).discord.token == "file.token.value"
    # The environment variable wins over the file, like every other override.
    assert load_config(config_path, environ={"DISCORD_TOKEN": "env"}).discord.token == "env"


@pytest.mark.parametrize("content", [None, "  \n"])
def test_unusable_token_file_is_a_clear_error(tmp_path, content):
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    config_path = write(tmp_path, f'[discord]\ntoken_file = "{token_file}"\n')
    with pytest.raises(ConfigError, match="discord.token_file: "):
        load_config(config_path, environ={})


def test_database_password_is_hidden_from_repr():
    config = load_config(None, environ={"WHYMOJI_DATABASE_URL": "postgresql://bot:hunter2@db/whymoji"})
    assert config.database.url == "postgresql://bot:hunter2@db/whymoji"
    assert "hunter2" not in repr(config)
    assert redact_url("postgresql://bot@db/whymoji?password=hunter2&sslmode=require") == (
        "postgresql://bot@db/whymoji?password=***&sslmode=require"
    )
    assert redact_url("sqlite:////var/lib/whymoji.sqlite3") == "sqlite:////var/lib/whymoji.sqlite3"


def test_config_is_frozen():
    config = load_config(None, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.reactions.top_k = 5  # type: ignore[misc]


# --- config.example.toml documents every key -------------------------------------------------

COMMENTED_KEY = re.compile(r"^# (\w+ = .*)$")


def uncommented_example() -> str:
    """The example with its commented-out example values switched on."""
    return "\n".join(COMMENTED_KEY.sub(r"\1", line) for line in EXAMPLE.read_text().splitlines())


def test_example_as_shipped_equals_the_defaults():
    assert load_config(EXAMPLE, environ={}) == Config()


def test_example_documents_every_key_with_a_valid_value(tmp_path):
    text = uncommented_example()
    document = tomllib.loads(text)
    for section, section_type in sections().items():
        assert set(document.get(section, {})) == set(options(section_type)), section
    # The documented example values pass validation too (token_file must name a real file).
    token_file = tmp_path / "token"
    token_file.write_text("t")
    text = re.sub(r"^token_file = .*$", f'token_file = "{token_file}"', text, flags=re.MULTILINE)
    config = load_config(write(tmp_path, text), environ={})
    assert config.discord.shard_ids == tuple(document["discord"]["shard_ids"])
    assert config.discord.token == "t"


def test_example_active_lines_hold_each_keys_default():
    active = tomllib.loads(EXAMPLE.read_text())
    defaults = Config()
    for section, table in active.items():
        for key, value in table.items():
            default = getattr(getattr(defaults, section), key)
            read = options(sections()[section])[key].check(value)  # e.g. ["🔫"] is read as {42}
            assert read == default, f"{section}.{key}: example says {value!r}, default is {default!r}"


def test_model_precision_is_fp32_or_int8_and_int8_needs_the_cpu(tmp_path):
    assert load_config(None, environ={}).model.precision == "fp32"
    assert load_config(None, environ={"WHYMOJI_MODEL_PRECISION": "int8"}).model.precision == "int8"
    with pytest.raises(ConfigError, match=re.escape("model.precision: must be one of fp32, int8, got 'fp16'")):
        load_config(write(tmp_path, '[model]\nprecision = "fp16"\n'), environ={})
    with pytest.raises(ConfigError, match=re.escape('model.precision: "int8" runs on ONNX Runtime on the CPU only')):
        load_config(write(tmp_path, '[model]\nprecision = "int8"\ndevice = "cuda"\n'), environ={})
