"""What every subcommand shares: the one configuration, and the flags that say where the model comes from.

Every command reads the same settings (``bot/config.py``), each source winning over the one
before: the config file (``--config``, else ``WHYMOJI_CONFIG``), then ``WHYMOJI_<SECTION>_<KEY>``,
then the command's flags. So ``WHYMOJI_MODEL_CACHE_DIR`` reaches ``predict`` and ``download``
as it reaches ``run``, and a mistake anywhere in them is the same error for every command.
Flags that are config keys (``--weights`` is ``model.weights``, ``--offline`` is
``model.offline``, ...) are checked by the key's own rule, so a value is accepted or refused the
same way wherever it is given; a flag not given leaves the setting as the file and environment
made it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import CONFIG_ENV, Config, ModelConfig, config_path, load_config, option_of
from bot.deepmoji.files import DEFAULT_REPO_ID

if TYPE_CHECKING:
    from bot.deepmoji.engine import Engine

#: The flags that set ``model.<key>``, by their argparse ``dest`` (= the key).
MODEL_FLAGS = ("weights", "vocabulary", "offline", "device", "threads", "repo_id", "revision", "cache_dir")


def config_rule(key: str) -> Callable[[str], object]:
    """An argparse ``type`` that applies the rule of the config key ``model.<key>``."""
    option = option_of(ModelConfig, key)

    def convert(text: str) -> object:
        try:
            return option.parse_text(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config PATH``, else ``$WHYMOJI_CONFIG``; neither means defaults + environment."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"TOML config file (default: ${CONFIG_ENV}; without one, defaults and WHYMOJI_* variables)",
    )


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--repo-id``, ``--revision``, ``--cache-dir``: which Hub files, cached where."""
    add_config_argument(parser)
    group = parser.add_argument_group("Hugging Face Hub (model.repo_id, model.revision, model.cache_dir)")
    group.add_argument(
        "--repo-id",
        type=config_rule("repo_id"),
        metavar="OWNER/NAME",
        help=f"Hub repository holding the model files (default: {DEFAULT_REPO_ID})",
    )
    group.add_argument(
        "--revision", type=config_rule("revision"), metavar="REV", help="branch, tag or commit (default: main)"
    )
    group.add_argument(
        "--cache-dir",
        type=config_rule("cache_dir"),
        metavar="PATH",
        help="Hub cache folder (default: the Hugging Face cache, ~/.cache/huggingface or $HF_HOME)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, local file paths, offline mode, device, threads and the Hub options."""
    group = parser.add_argument_group("model files (model.weights, model.vocabulary, model.offline)")
    group.add_argument(
        "--weights",
        type=config_rule("weights"),
        metavar="PATH",
        help="local pytorch_model.bin (default: the Hub cache, downloading when allowed)",
    )
    group.add_argument(
        "--vocabulary",
        type=config_rule("vocabulary"),
        metavar="PATH",
        help="local vocabulary.json (default: the Hub cache, downloading when allowed)",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="never download; use local files or the cache only",
    )
    group = parser.add_argument_group("computing (model.device, model.threads)")
    group.add_argument(
        "--device",
        type=config_rule("device"),
        metavar="DEVICE",
        help="torch device: cpu or cuda (default: cpu)",
    )
    group.add_argument(
        "--threads",
        type=config_rule("threads"),
        metavar="N",
        help="threads to compute with (default: 0, whymoji's choice: up to 2 for predictions, "
        "1 for explanations; bot.deepmoji.threads)",
    )
    add_hub_arguments(parser)


def flag_overrides(args: argparse.Namespace) -> dict[tuple[str, str], object]:
    """The model settings given as flags: (section, key) -> value, for ``load_config``."""
    return {("model", key): value for key in MODEL_FLAGS if (value := getattr(args, key, None)) is not None}


def load_settings(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Config:
    """The configuration of this command: file, then environment, then flags; every problem at once."""
    return load_config(config_path(args.config, environ), environ, overrides=flag_overrides(args))


def load_engine(config: Config, args: argparse.Namespace) -> Engine:
    """The engine ``config.model`` describes: device checked, threads set, files found (downloaded
    on first use unless offline), read up to ``model.max_tokens`` in ``model.precision``."""
    from bot.deepmoji.device import require_device
    from bot.deepmoji.engine import Engine  # imported late: torch is slow to import
    from bot.deepmoji.threads import use_threads
    from bot.serving.loading import locate_model_files

    model = config.model
    require_device(model.device, "--device" if getattr(args, "device", None) is not None else "model.device")
    use_threads(model.threads)
    files = locate_model_files(model)
    return Engine.load(files, device=model.device, max_tokens=model.max_tokens, precision=model.precision)
