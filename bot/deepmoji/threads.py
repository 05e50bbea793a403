"""How many threads the model computes with: the one policy for the bot and the CLI.

``model.threads`` (and the CLI's ``--threads``) ask for a count; 0 means "choose". The choice
is one thread, because it is the only setting we measured that never collapses on a busy host
(benchmarks/README.md, *Threads*): torch's OpenMP threads spin while they wait, so with two
threads and another process on the second core a 12-token predict took over a second and a
`/why` 8x longer, and idle OpenMP threads spinning after a `/why` slow the ONNX Runtime calls
that follow in the same process. ONNX Runtime's own threads are made to sleep rather than
spin (``bot.deepmoji.runtime.session_options``). One count covers both runtimes: the ONNX
Runtime sessions follow torch's thread count (``DeepMoji.runtime``).
"""

from __future__ import annotations

import torch

#: The count ``model.threads = 0`` (and an omitted ``--threads``) stands for.
DEFAULT_THREADS = 1


def resolve_threads(requested: int = 0) -> int:
    """``requested`` if it is a count, else the default; negative counts are refused."""
    if requested < 0:
        raise ValueError(f"threads must be 0 (choose) or a positive count, got {requested}")
    return requested or DEFAULT_THREADS


def use_threads(requested: int = 0) -> int:
    """Set the process's model threads (torch's, which ONNX Runtime sessions follow) by the
    policy above and return the count; call it before loading the engine."""
    threads = resolve_threads(requested)
    torch.set_num_threads(threads)
    return threads
