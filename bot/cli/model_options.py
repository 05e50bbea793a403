"""Command-line options that say where the model comes from, shared by the subcommands.

``predict`` and ``why`` load an engine the same way; ``download`` reuses the Hub options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bot.deepmoji.files import (
    CACHE_DIR_ENV,
    DEFAULT_REPO_ID,
    VOCABULARY_ENV,
    WEIGHTS_ENV,
    resolve_model_files,
)

if TYPE_CHECKING:
    from bot.deepmoji.engine import Engine


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """``--repo-id``, ``--revision`` and ``--cache-dir``: which Hub files, cached where."""
    group = parser.add_argument_group("Hugging Face Hub")
    group.add_argument(
        "--repo-id", default=DEFAULT_REPO_ID, metavar="OWNER/NAME",
        help=f"Hub repository holding the model files (default: {DEFAULT_REPO_ID})",
    )
    group.add_argument("--revision", metavar="REV", help="branch, tag or commit (default: main)")
    group.add_argument(
        "--cache-dir", type=Path, metavar="PATH",
        help=f"Hub cache folder (default: ${CACHE_DIR_ENV}, else the Hugging Face cache)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Local file paths, offline mode, device and the Hub options."""
    group = parser.add_argument_group("model files")
    group.add_argument(
        "--weights", type=Path, metavar="PATH",
        help=f"local pytorch_model.bin (default: ${WEIGHTS_ENV}, else the Hub cache)",
    )
    group.add_argument(
        "--vocabulary", type=Path, metavar="PATH",
        help=f"local vocabulary.json (default: ${VOCABULARY_ENV}, else the Hub cache)",
    )
    group.add_argument(
        "--offline", action="store_true",
        help="never download; use local files or the cache only (also WHYMOJI_OFFLINE=1)",
    )
    group.add_argument(
        "--device", default="cpu", metavar="DEVICE", help="torch device, e.g. cpu or cuda (default: cpu)"
    )
    add_hub_arguments(parser)


def load_engine(args: argparse.Namespace) -> Engine:
    """The engine the parsed model options describe (downloads on first use unless offline)."""
    from bot.deepmoji.engine import Engine  # imported late: torch is slow to import

    files = resolve_model_files(
        args.weights,
        args.vocabulary,
        repo_id=args.repo_id,
        revision=args.revision,
        cache_dir=args.cache_dir,
        offline=True if args.offline else None,
    )
    return Engine.load(files, device=args.device)
