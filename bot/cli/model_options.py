"""Command-line options that say where the model comes from, shared by the subcommands.

``predict`` and ``why`` load an engine the same way; ``download`` reuses the Hub options. Flags
that are also config keys (``--device``, ``--repo-id``, ``--threads``) are checked by the config
key's own rule, so a value is accepted or refused the same way wherever it is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import ModelConfig, option_of
from bot.deepmoji.files import CACHE_DIR_ENV, DEFAULT_REPO_ID, VOCABULARY_ENV, WEIGHTS_ENV, resolve_model_files

if TYPE_CHECKING:
    from bot.deepmoji.engine import Engine


def config_rule(key: str) -> Callable[[str], object]:
    """An argparse ``type`` that applies the rule of the config key ``model.<key>``."""
    option = option_of(ModelConfig, key)

    def convert(text: str) -> object:
        try:
            return option.parse_text(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """``--repo-id``, ``--revision`` and ``--cache-dir``: which Hub files, cached where."""
    group = parser.add_argument_group("Hugging Face Hub")
    group.add_argument(
        "--repo-id",
        type=config_rule("repo_id"),
        default=DEFAULT_REPO_ID,
        metavar="OWNER/NAME",
        help=f"Hub repository holding the model files (default: {DEFAULT_REPO_ID})",
    )
    group.add_argument("--revision", metavar="REV", help="branch, tag or commit (default: main)")
    group.add_argument(
        "--cache-dir",
        type=Path,
        metavar="PATH",
        help=f"Hub cache folder (default: ${CACHE_DIR_ENV}, else the Hugging Face cache)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Local file paths, offline mode, device, threads and the Hub options."""
    group = parser.add_argument_group("model files")
    group.add_argument(
        "--weights",
        type=Path,
        metavar="PATH",
        help=f"local pytorch_model.bin (default: ${WEIGHTS_ENV}, else the Hub cache)",
    )
    group.add_argument(
        "--vocabulary",
        type=Path,
        metavar="PATH",
        help=f"local vocabulary.json (default: ${VOCABULARY_ENV}, else the Hub cache)",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        help="never download; use local files or the cache only (also WHYMOJI_OFFLINE=1)",
    )
    group.add_argument(
        "--device",
        type=config_rule("device"),
        default="cpu",
        metavar="DEVICE",
        help="torch device: cpu or cuda (default: cpu)",
    )
    group.add_argument(
        "--threads",
        type=config_rule("threads"),
        default=0,
        metavar="N",
        help="threads to compute with (default: 0, whymoji's choice: up to 2 for predictions, "
        "1 for explanations; bot.deepmoji.threads)",
    )
    add_hub_arguments(parser)


def load_engine(args: argparse.Namespace) -> Engine:
    """The engine the parsed model options describe (downloads on first use unless offline)."""
    from bot.deepmoji.device import require_device
    from bot.deepmoji.engine import Engine  # imported late: torch is slow to import
    from bot.deepmoji.threads import use_threads

    require_device(args.device, "--device")
    use_threads(args.threads)
    files = resolve_model_files(
        args.weights,
        args.vocabulary,
        repo_id=args.repo_id,
        revision=args.revision,
        cache_dir=args.cache_dir,
        offline=True if args.offline else None,
    )
    return Engine.load(files, device=args.device)
