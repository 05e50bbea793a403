"""whymoji's settings: one TOML file, overridden by environment variables, checked up front.

Every key is declared once, as a field of a frozen dataclass whose metadata says how to read and
check it. Unknown sections and keys are errors, so a typo never silently falls back to a default.
Every command reads the same settings, each source winning over the one before: the file
(``--config`` or ``WHYMOJI_CONFIG``), then ``WHYMOJI_<SECTION>_<KEY>`` (an empty value unsets an
optional key), then the command's own flags (``overrides``). One name per setting: the former
short names (``WHYMOJI_WEIGHTS`` ...) are errors that name the setting to use instead.
The bot token is never read from the TOML: it comes from ``DISCORD_TOKEN`` or the file named by
``discord.token_file``, and ``repr`` hides it. Relative paths are relative to the working folder.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.deepmoji.emoji_parsing import emoji_classes
from bot.deepmoji.files import DEFAULT_REPO_ID
from bot.errors import WhymojiError

ENV_PREFIX = "WHYMOJI_"
TOKEN_ENV = "DISCORD_TOKEN"
#: Names the config file when ``--config`` is not given (handy in containers).
CONFIG_ENV = "WHYMOJI_CONFIG"
#: ``WHYMOJI_*`` variables that are not config keys: the config path and the test suite's shared
#: folder. Any other ``WHYMOJI_*`` variable that is not ``WHYMOJI_<SECTION>_<KEY>`` is a typo,
#: and an error.
OTHER_VARIABLES = (CONFIG_ENV, "WHYMOJI_SHARED")
#: Short names older versions read for some model settings, each now an error naming the one
#: name of its setting: two names for one setting would need a rule for which wins, and every
#: command has read ``WHYMOJI_<SECTION>_<KEY>`` since.
RENAMED_VARIABLES = {
    "WHYMOJI_WEIGHTS": "WHYMOJI_MODEL_WEIGHTS",
    "WHYMOJI_VOCABULARY": "WHYMOJI_MODEL_VOCABULARY",
    "WHYMOJI_CACHE_DIR": "WHYMOJI_MODEL_CACHE_DIR",
    "WHYMOJI_OFFLINE": "WHYMOJI_MODEL_OFFLINE",
}
#: The byte-order marks a config file might start with, and what they say about it.
_BYTE_ORDER_MARKS = (
    (b"\xef\xbb\xbf", "starts with a UTF-8 byte-order mark, which TOML does not allow; save it as UTF-8 without one"),
    (b"\xff\xfe", "is UTF-16 text (Windows Notepad's 'Unicode'); save it as UTF-8"),
    (b"\xfe\xff", "is UTF-16 text; save it as UTF-8"),
)
#: Prefixes of the variables the tests, benchmarks and CI script read for themselves.
DEVELOPMENT_PREFIXES = ("WHYMOJI_TEST_", "WHYMOJI_BENCH_", "WHYMOJI_CI_")


class ConfigError(WhymojiError):
    """Settings are missing, misspelt or out of range; each problem names the key and what is wrong.

    ``load_config`` collects every problem it finds (``problems``), so one run shows all there is
    to fix; ``str()`` joins them with "; ".
    """

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems = problems

    def __str__(self) -> str:
        return "; ".join(self.problems)

    def lines(self) -> list[str]:
        return list(self.problems)


@dataclass(frozen=True)
class Option:
    """How one key is checked: ``check`` takes a TOML value, ``from_text`` an environment string.

    Both raise ``ValueError`` with a message such as ``must be an integer from 1 to 10, got 0``;
    the loader prefixes it with the key or variable name.
    """

    check: Callable[[object], object]
    from_text: Callable[[str], object]
    optional: bool = False

    def parse_text(self, text: str) -> object:
        """Check an environment value; an empty one unsets an optional key."""
        if self.optional and not text.strip():
            return None
        return self.check(self.from_text(text))


def _got(value: object) -> str:
    return f"got {value!r}"


def _integer_text(text: str) -> int | str:
    try:
        return int(text.strip())
    except ValueError:
        return text


def _number_text(text: str) -> float | str:
    try:
        return float(text.strip())
    except ValueError:
        return text


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _boolean_text(text: str) -> bool | str:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return text


def _integer_list_text(text: str) -> list[int | str]:
    inner = text.strip().removeprefix("[").removesuffix("]")
    return [_integer_text(part) for part in inner.split(",") if part.strip()]


def _range_words(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f">= {low}"
    if high is not None:
        return f"<= {high}"
    return ""


def integer(low: int | None = None, high: int | None = None, *, optional: bool = False) -> Option:
    """An integer in ``[low, high]`` (either bound may be open)."""
    wanted = f"must be an integer {_range_words(low, high)}".rstrip()

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{wanted}, {_got(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{wanted}, {_got(value)}")
        return value

    return Option(check, _integer_text, optional)


def number(low: float | None = None, high: float | None = None) -> Option:
    """A finite number in ``[low, high]``; TOML integers are accepted and become floats."""
    wanted = f"must be a number {_range_words(low, high)}".rstrip()

    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{wanted}, {_got(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{wanted}, {_got(value)}")
        return float(value)

    return Option(check, _number_text)


def boolean() -> Option:
    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, {_got(value)}")
        return value

    return Option(check, _boolean_text)


def text(choices: tuple[str, ...] | None = None, *, upper: bool = False, optional: bool = False) -> Option:
    """A non-empty string, optionally one of ``choices`` (compared after ``upper``-casing)."""

    def check(value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a non-empty string, {_got(value)}")
        value = value.strip().upper() if upper else value.strip()
        if choices is not None and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, {_got(value)}")
        return value

    return Option(check, str, optional)


def path() -> Option:
    def check(value: object) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a non-empty path, {_got(value)}")
        return Path(value.strip()).expanduser()

    return Option(check, str, optional=True)


def url(schemes: tuple[str, ...], *, optional: bool = False) -> Option:
    """A URL whose scheme is one of ``schemes`` and that names a host (or, for sqlite, a path)."""

    def check(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a URL string, {_got(value)}")
        parts = urlsplit(value.strip())
        if parts.scheme not in schemes:
            raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        if parts.scheme != "sqlite" and not parts.hostname:
            raise ValueError("must be a URL that names a host")
        return value.strip()

    return Option(check, str, optional)


def repo_id() -> Option:
    """A Hugging Face Hub repository id (``owner/name``), checked by huggingface_hub's own rules."""

    def check(value: object) -> str:
        # Imported here: the Hub client is slow to import and only a configured id needs it.
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        if not isinstance(value, str):
            raise ValueError(f"must be a Hub repository id such as {DEFAULT_REPO_ID}, {_got(value)}")
        try:
            validate_repo_id(value.strip())
        except HFValidationError:
            raise ValueError(
                f"must be a Hub repository id such as {DEFAULT_REPO_ID} (letters, digits, '-', '_' "
                f"and '.', at most one '/'), {_got(value)}"
            ) from None
        return value.strip()

    return Option(check, str)


def integer_list(low: int = 0) -> Option:
    """A non-empty list of distinct integers >= ``low``, kept as a tuple (configs are frozen)."""

    def check(value: object) -> tuple[int, ...]:
        wanted = f"must be a non-empty list of distinct integers >= {low}, {_got(value)}"
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(wanted)
        # Items first: a nested list or table is unhashable, so set() could not count it.
        if any(isinstance(item, bool) or not isinstance(item, int) or item < low for item in value):
            raise ValueError(wanted)
        if len(set(value)) != len(value):
            raise ValueError(wanted)
        return tuple(value)

    return Option(check, _integer_list_text, optional=True)


def emoji_set() -> Option:
    """DeepMoji emojis as people type them (a TOML list of strings; in the environment one
    string, e.g. ``🔫,💀``), kept as the set of their class indices; ``[]`` is none."""

    def check(value: object) -> frozenset[int]:
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise ValueError(f'must be a list of emojis such as ["🔫", "💀"], {_got(value)}')
        return emoji_classes(" ".join(value))

    return Option(check, lambda text: [text])


_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*")


def redact_url(value: str) -> str:
    """The URL with any password replaced by ``***``, fit for messages and logs."""
    parts = urlsplit(value)
    query = _QUERY_PASSWORD.sub(r"\1***", parts.query)
    if parts.password is None and query == parts.query:
        return value
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc, query=query).geturl()


def _key(default: Any, option: Option) -> Any:  # Any: a field() stands where the field's own type is declared
    """A dataclass field that is also a config key read through ``option``."""
    return field(default=default, metadata={"option": option})


@dataclass(frozen=True)
class DiscordConfig:
    token_file: Path | None = _key(None, path())
    api_base_url: str | None = _key(None, url(("http", "https"), optional=True))
    gateway_url: str | None = _key(None, url(("ws", "wss", "http", "https"), optional=True))
    shard_count: int | None = _key(None, integer(1, optional=True))
    shard_ids: tuple[int, ...] | None = _key(None, integer_list())
    sync_commands: bool = _key(True, boolean())
    #: Resolved from ``DISCORD_TOKEN`` or ``token_file``; not a key, never shown.
    token: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.shard_ids is None:
            return
        if self.shard_count is None:
            raise ConfigError("discord.shard_ids: needs discord.shard_count (the total) to be set")
        too_big = [shard for shard in self.shard_ids if shard >= self.shard_count]
        if too_big:
            raise ConfigError(
                f"discord.shard_ids: every id must be below discord.shard_count ({self.shard_count}), got {too_big}"
            )


@dataclass(frozen=True)
class ModelConfig:
    weights: Path | None = _key(None, path())
    vocabulary: Path | None = _key(None, path())
    repo_id: str = _key(DEFAULT_REPO_ID, repo_id())
    revision: str | None = _key(None, text(optional=True))
    cache_dir: Path | None = _key(None, path())
    offline: bool = _key(False, boolean())
    device: str = _key("cpu", text(("cpu", "cuda")))
    threads: int = _key(0, integer(0))
    max_tokens: int = _key(40, integer(1, 4096))  # bot.deepmoji.engine.DEFAULT_MAX_TOKENS
    precision: str = _key("fp32", text(("fp32", "int8")))

    def __post_init__(self) -> None:
        if self.precision != "fp32" and self.device != "cpu":
            raise ConfigError(
                f'model.precision: "{self.precision}" runs on ONNX Runtime on the CPU only; '
                f'set model.device = "cpu" or model.precision = "fp32"'
            )


@dataclass(frozen=True)
class WorkerConfig:
    max_batch: int = _key(32, integer(1, 1024))
    max_wait_ms: float = _key(5.0, number(0, 1000))
    queue_size: int = _key(256, integer(1))
    max_explanations: int = _key(4, integer(1, 64))
    explanations_in_progress: int = _key(1, integer(1, 16))


#: Longest per-channel pause between reacted messages (a day): the config's rule, the store's,
#: and ``/whymoji cooldown``'s declared range.
MAX_REACTION_COOLDOWN_S = 86_400


@dataclass(frozen=True)
class ReactionsConfig:
    top_k: int = _key(3, integer(1, 10))
    threshold: float = _key(0.1, number(0, 1))
    cooldown_s: float = _key(2.0, number(0, MAX_REACTION_COOLDOWN_S))
    min_known: float = _key(0.5, number(0, 1))
    blocked: frozenset[int] = _key(emoji_classes("🔫"), emoji_set())
    distress: float = _key(0.5, number(0, 1))
    chance: int = _key(100, integer(0, 100))


@dataclass(frozen=True)
class ModerationConfig:
    threshold: float = _key(0.5, number(0, 1))
    cooldown_s: float = _key(300.0, number(0))


@dataclass(frozen=True)
class WhyConfig:
    cooldown_s: float = _key(10.0, number(0))
    max_per_server: int = _key(3, integer(1))
    kept_bytes: int = _key(16_000_000, integer(0))


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = _key("sqlite:///data/whymoji.sqlite3", url(("sqlite", "postgresql", "postgres")))

    def __repr__(self) -> str:
        """Hide a password that may be part of the URL."""
        return f"DatabaseConfig(url={redact_url(self.url)!r})"


@dataclass(frozen=True)
class HealthConfig:
    enabled: bool = _key(True, boolean())
    host: str = _key("127.0.0.1", text())
    port: int = _key(8080, integer(0, 65535))


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _key("INFO", text(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True))
    #: discord.py's gateway and REST payloads in the DEBUG log, unredacted: message text and
    #: interaction tokens included. Off: they are withheld at every level (``bot.app``).
    discord_payloads: bool = _key(False, boolean())


@dataclass(frozen=True)
class Config:
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    reactions: ReactionsConfig = field(default_factory=ReactionsConfig)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)
    why: WhyConfig = field(default_factory=WhyConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def sections() -> dict[str, type]:
    """Section name -> its dataclass, in file order."""
    return {item.name: item.default_factory for item in fields(Config)}  # type: ignore[misc]


def options(section_type: type) -> dict[str, Option]:
    """Key -> Option for the keys of one section (the token is not a key)."""
    return {item.name: item.metadata["option"] for item in fields(section_type) if "option" in item.metadata}


def option_of(section_type: type, key: str) -> Option:
    """The Option of one key, so other settings (e.g. per-server ones) obey the same rules."""
    return options(section_type)[key]


def config_path(explicit: Path | str | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The config file to read: ``explicit`` (``--config``), else ``WHYMOJI_CONFIG``, else none."""
    if explicit is not None:
        return Path(explicit)
    named = environ.get(CONFIG_ENV, "").strip()
    return Path(named) if named else None


def _read_file(config_path: Path) -> dict[str, object]:
    try:
        data = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {config_path}: not found") from None
    except OSError as error:
        raise ConfigError(f"config file {config_path}: cannot read ({error.strerror})") from None
    return tomllib.loads(_decoded(config_path, data))


def _decoded(config_path: Path, data: bytes) -> str:
    """The file as text; ``ConfigError`` naming the problem if it is not UTF-8 (TOML must be)."""
    for mark, problem in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            raise ConfigError(f"config file {config_path}: {problem}")
    if b"\0" in data:  # valid UTF-8, but no text file holds NUL bytes
        raise ConfigError(f"config file {config_path}: {_not_text(data)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"config file {config_path}: not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
            "save it as UTF-8 (TOML files must be UTF-8)"
        ) from None


def _not_text(data: bytes) -> str:
    """What a file with NUL bytes is: UTF-16 text without a byte-order mark, or binary data."""
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # TOML is mostly ASCII (keys, brackets, numbers): UTF-16 text decodes to it, binary data does not.
        if text and sum(" " <= char <= "~" or char in "\t\r\n" for char in text) >= 0.8 * len(text):
            return "looks like UTF-16 text; save it as UTF-8"
    return "binary data, not text; a config file is TOML, UTF-8 text"


Values = dict[tuple[str, str], object]


def _file_values(data: Mapping[str, object], problems: list[str]) -> Values:
    """(section, key) -> checked value for everything in the TOML document; problems appended."""
    known = sections()
    values: Values = {}
    for section, table in data.items():
        if section not in known:
            problems.append(f"{section}: unknown section (known: {', '.join(known)})")
            continue
        if not isinstance(table, dict):
            problems.append(f"{section}: must be a [{section}] table")
            continue
        section_options = options(known[section])
        for key, value in table.items():
            name = f"{section}.{key}"
            if (section, key) == ("discord", "token"):
                problems.append(
                    f"{name}: the token must not be in the config file; set the environment "
                    f"variable {TOKEN_ENV} or put it in a file named by discord.token_file"
                )
            elif key not in section_options:
                problems.append(f"{name}: unknown key (known: {', '.join(section_options)})")
            else:
                try:
                    values[(section, key)] = section_options[key].check(value)
                except ValueError as error:
                    problems.append(f"{name}: {error}")
    return values


def setting_variables() -> list[str]:
    """Every ``WHYMOJI_<SECTION>_<KEY>`` variable, in file order."""
    return [
        f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        for section, section_type in sections().items()
        for key in options(section_type)
    ]


def _unknown_variable(variable: str) -> str:
    """The problem line for a ``WHYMOJI_*`` variable whymoji does not read, with a likely fix."""
    names = setting_variables() + list(OTHER_VARIABLES) + list(RENAMED_VARIABLES)
    guess = [RENAMED_VARIABLES.get(name, name) for name in difflib.get_close_matches(variable, names, n=1, cutoff=0.8)]
    hint = f"did you mean {guess[0]}?" if guess else "settings are WHYMOJI_<SECTION>_<KEY>, see config.example.toml"
    return f"{variable}: unknown setting ({hint})"


def _environment_values(environ: Mapping[str, str], problems: list[str]) -> Values:
    """(section, key) -> checked value for every ``WHYMOJI_<SECTION>_<KEY>`` variable.

    Every other ``WHYMOJI_*`` variable must be one whymoji reads elsewhere (``OTHER_VARIABLES``)
    or a development one; anything else is reported, so a misspelt override is never ignored.
    """
    known = sections()
    values: Values = {}
    for variable, raw in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable in OTHER_VARIABLES:
            continue
        if variable.startswith(DEVELOPMENT_PREFIXES):
            continue
        section, _, key = variable[len(ENV_PREFIX) :].lower().partition("_")
        if (section, key) == ("discord", "token"):
            problems.append(f"{variable}: the token is read from {TOKEN_ENV}; set that instead")
            continue
        if variable in RENAMED_VARIABLES:
            problems.append(f"{variable}: now {RENAMED_VARIABLES[variable]} (one name per setting); set that instead")
            continue
        if section not in known or key not in options(known[section]):
            problems.append(_unknown_variable(variable))
            continue
        try:
            values[(section, key)] = options(known[section])[key].parse_text(raw)
        except ValueError as error:
            problems.append(f"{variable}: {error}")
    return values


def _read_token(token_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """``DISCORD_TOKEN`` if set, else the stripped contents of ``discord.token_file``."""
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    if token_file is None:
        return None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"discord.token_file: cannot read {token_file} ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"discord.token_file: {token_file} is not UTF-8 text") from None
    if not token:
        raise ConfigError(f"discord.token_file: {token_file} is empty")
    return token


def load_config(
    path: Path | str | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[tuple[str, str], object] | None = None,
) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then environment overrides, then
    ``overrides`` ((section, key) -> a value already checked by the key's rule: a command's
    flags); all checked, rules between keys included.

    Raises one ``ConfigError`` listing every problem found in the file and the environment.
    """
    problems: list[str] = []
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = _read_file(Path(path))
        except ConfigError as error:
            problems += error.problems
        except tomllib.TOMLDecodeError as error:
            problems.append(f"config file {path}: not valid TOML ({error})")
    values = {**_file_values(data, problems), **_environment_values(environ, problems), **(overrides or {})}
    built = {}
    for section, section_type in sections().items():
        chosen = {key: value for (name, key), value in values.items() if name == section}
        try:
            built[section] = section_type(**chosen)
        except ConfigError as error:  # a rule between keys (shard ids and count)
            problems += error.problems
            built[section] = section_type()
    try:
        token = _read_token(built["discord"].token_file, environ)
    except ConfigError as error:
        problems += error.problems
        token = None
    if problems:
        raise ConfigError(*problems)
    built["discord"] = replace(built["discord"], token=token)
    return Config(**built)
