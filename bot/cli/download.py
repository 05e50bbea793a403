"""`whymoji download`: fetch the model files into the Hub cache ahead of time.

Useful before going offline, or to bake the files into an image; prints where they are.
"""

from __future__ import annotations

import argparse

from bot.cli.model_options import add_hub_arguments
from bot.cli.output import emit
from bot.deepmoji.files import download_model_files


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download the model files into the cache",
        description="Download pytorch_model.bin and vocabulary.json from the Hugging Face Hub "
        "into its cache (or --cache-dir) and print where they are.",
    )
    add_hub_arguments(parser)
    parser.add_argument("--force", action="store_true", help="download again even if the cached files are current")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    files = download_model_files(
        repo_id=args.repo_id, revision=args.revision, cache_dir=args.cache_dir, force=args.force
    )
    emit(f"weights:    {files.weights}")
    emit(f"vocabulary: {files.vocabulary}")
    return 0
