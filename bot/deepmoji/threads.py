"""How many threads the model computes with: the one policy for the bot and the CLI.

``model.threads`` (and the CLI's ``--threads``) ask for a count, used by torch and ONNX Runtime
alike; 0 means "choose", which picks per runtime by how its threads wait (benchmarks/README.md,
*Threads*, measured quiet and with a second process spinning on the other core):

* ONNX Runtime (predictions): up to two threads, which sleep when idle
  (``bot.deepmoji.runtime.session_options``). Quiet, two were 1.6x faster than one on a
  12-token message and 1.8x on batches; busy, never more than 12% slower than one.
* torch (``/why``): one thread. torch's OpenMP threads spin while they wait: with two, a
  12-token predict took up to a second and a ``/why`` 6-10 s instead of 0.5-1.1 s once other
  work held a core, and idle spinning threads slow the ONNX Runtime calls that follow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

#: ONNX Runtime's threads when asked to choose (fewer if the process may use fewer CPUs).
RUNTIME_THREADS = 2
#: torch's threads when asked to choose.
TORCH_THREADS = 1

#: What :func:`use_threads` chose for ONNX Runtime; ``None``: sessions follow torch's count.
_runtime_threads: int | None = None


@dataclass(frozen=True)
class Threads:
    runtime: int  #: ONNX Runtime intra-op threads (predictions)
    torch: int  #: torch intra-op threads (``/why``, other devices)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, where the platform says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_threads(requested: int = 0) -> Threads:
    """``requested`` for both runtimes if it is a count, else the choice above."""
    if requested < 0:
        raise ValueError(f"threads must be 0 (choose) or a positive count, got {requested}")
    if requested:
        return Threads(runtime=requested, torch=requested)
    return Threads(runtime=min(RUNTIME_THREADS, available_cpus()), torch=TORCH_THREADS)


def use_threads(requested: int = 0) -> Threads:
    """Set the process's model threads by the policy and return them; call it before loading
    the engine (an ONNX Runtime session is rebuilt when its thread count changes)."""
    global _runtime_threads
    threads = resolve_threads(requested)
    torch.set_num_threads(threads.torch)
    _runtime_threads = threads.runtime
    return threads


def runtime_threads() -> int:
    """ONNX Runtime's threads for a session: what :func:`use_threads` chose, else torch's count
    (a library user who only ever set torch's)."""
    return torch.get_num_threads() if _runtime_threads is None else _runtime_threads
