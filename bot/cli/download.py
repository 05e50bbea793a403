"""`whymoji download`: fetch the model files into the Hub cache ahead of time.

Useful before going offline, or to bake the files into an image; prints where they are. It reads
the same configuration as every command (``model.repo_id``, ``model.revision``,
``model.cache_dir``: in the image, ``WHYMOJI_MODEL_CACHE_DIR``), so the files land where `run`
and `predict` look for them.
"""

from __future__ import annotations

import argparse

from bot.cli.model_options import add_hub_arguments, load_settings
from bot.cli.output import emit, note
from bot.deepmoji.files import download_model_files


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download the model files into the cache",
        description="Download pytorch_model.bin and vocabulary.json from the Hugging Face Hub "
        "into its cache (model.cache_dir, --cache-dir) and print where they are.",
    )
    add_hub_arguments(parser)
    parser.add_argument("--force", action="store_true", help="download again even if the cached files are current")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model = load_settings(args).model
    files = download_model_files(
        repo_id=model.repo_id,
        revision=model.revision,
        cache_dir=model.cache_dir,
        offline=model.offline,
        force=args.force,
    )
    emit(f"weights:    {files.weights}")
    emit(f"vocabulary: {files.vocabulary}")
    for setting, path in (("model.weights", model.weights), ("model.vocabulary", model.vocabulary)):
        if path is not None:
            note(f"{setting} is set ({path.absolute()}): the other commands use that file, not the downloaded one")
    return 0
