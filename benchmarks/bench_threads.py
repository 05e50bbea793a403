"""Threads on a quiet and on a busy host: which thread settings collapse, side by side in one run.

Seeded full-size weights. Configurations (all in one process, calls alternating, the order rotating):

* ``ORT 1``: ONNX Runtime (the engine's session, ``bot.deepmoji.runtime``) with one thread;
* ``ORT 2``: two intra-op threads that sleep when idle (``session.intra_op.allow_spinning=0``,
  the engine's setting);
* ``ORT 2 spin``: two threads that spin while waiting (ONNX Runtime's default);
* ``torch 1`` / ``torch 2``: the torch path with ``torch.set_num_threads``; besides ``predict`` it
  times the ``/why`` computation (``bot.explain.occlusion`` of a 30-token message), which
  always runs on torch.

Each round measures every configuration quiet, then loaded: ``--spinners`` processes (default:
one fewer than the CPUs, i.e. "a second process spinning on the other core" on two cores)
busy-looping while it runs. torch's OpenMP threads spin or sleep by ``OMP_WAIT_POLICY``, read
once when the library loads, so the whole set runs twice, in a child process each: OpenMP's
default and ``OMP_WAIT_POLICY=PASSIVE``. Figures are medians (and the worst 12-token call);
the machine is shared, so compare rows of one run only. Usage:

    .venv/bin/python -m benchmarks.bench_threads [--rounds 3] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("ORT 1", "ORT 2", "ORT 2 spin", "torch 1", "torch 2")
CONDITIONS = ("quiet", "loaded")
WORKLOADS = ("12 tokens, ms", "worst 12 tokens, ms", "batch of 32, msg/s", "/why 30 tokens, s")
OMP_POLICIES = ("default", "PASSIVE")


def spin() -> None:
    while True:
        pass


def measure(rounds: int, repeats: int, spinners: int) -> dict[str, list[float]]:
    """Every configuration, quiet and loaded, for ``rounds`` rounds; runs in the child."""
    import torch

    from benchmarks.bench_predict import random_ids, rotated
    from bot.deepmoji.kernels import validate_batch
    from bot.deepmoji.model import DeepMoji
    from bot.deepmoji.runtime import RuntimeModel, session_options
    from bot.deepmoji.seeded import seeded_state_dict
    from bot.explain import occlusion

    rng = np.random.default_rng(0)
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    model.backend = "torch"
    state = {key: value.numpy() for key, value in seeded_state_dict(1).items()}
    sessions = {
        "ORT 1": RuntimeModel(state, options=session_options(1)),
        "ORT 2": RuntimeModel(state, options=session_options(2)),
        "ORT 2 spin": RuntimeModel(state, options=session_options(2, spinning=True)),
    }
    single = [random_ids(12, rng)]
    batch = [random_ids(int(length), rng) for length in rng.integers(3, 40, 32)]
    why = random_ids(30, rng)

    def runner(config: str) -> tuple[Callable[[list[list[int]]], object], Callable[[], object] | None]:
        if config in sessions:
            runtime = sessions[config]
            return (lambda rows: runtime.predict(*validate_batch(rows, 50_000))), None
        threads = int(config.split()[1])

        def torch_predict(rows):
            torch.set_num_threads(threads)
            return model.predict(rows)

        def torch_why():
            torch.set_num_threads(threads)
            return occlusion(model, why)

        return torch_predict, torch_why

    figures: dict[str, list[float]] = {}

    def record(config: str, condition: str, workload: str, value: float) -> None:
        figures.setdefault(f"{config}|{condition}|{workload}", []).append(value)

    for round_number in range(rounds):
        for condition in CONDITIONS:
            load = [
                multiprocessing.Process(target=spin, daemon=True)
                for _ in range(spinners if condition == "loaded" else 0)
            ]
            for process in load:
                process.start()
            time.sleep(0.5 if load else 0)
            for config in rotated(CONFIGS, round_number):
                predict, explain = runner(config)
                predict(single)  # warm-up
                calls = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    predict(single)
                    calls.append(1000 * (time.perf_counter() - started))
                record(config, condition, "12 tokens, ms", statistics.median(calls))
                record(config, condition, "worst 12 tokens, ms", max(calls))
                for _ in range(3):
                    started = time.perf_counter()
                    predict(batch)
                    record(config, condition, "batch of 32, msg/s", len(batch) / (time.perf_counter() - started))
                if explain is not None:
                    started = time.perf_counter()
                    explain()
                    record(config, condition, "/why 30 tokens, s", time.perf_counter() - started)
            for process in load:
                process.terminate()
                process.join()
    torch.set_num_threads(1)
    return figures


def run_child(policy: str, args: argparse.Namespace) -> dict[str, list[float]]:
    environ = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if policy != "default":
        environ["OMP_WAIT_POLICY"] = policy
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_threads",
        "--child",
        "--rounds",
        str(args.rounds),
        "--repeats",
        str(args.repeats),
        "--spinners",
        str(args.spinners),
    ]
    result = subprocess.run(command, env=environ, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"bench_threads: the {policy} child failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15, help="12-token calls per configuration and round")
    parser.add_argument("--spinners", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds, args.repeats, args.spinners)))
        return
    print(
        f"{os.cpu_count()} CPUs, {args.spinners} spinner(s) when loaded, load average {os.getloadavg()[0]:.1f} at the start"
    )
    results = {policy: run_child(policy, args) for policy in OMP_POLICIES}
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print(f"{'':34}" + "".join(f"{workload:>22}" for workload in WORKLOADS))
    for policy, figures in results.items():
        for config in CONFIGS:
            if config.startswith("ORT") and policy != "default":
                continue  # OpenMP's policy does not touch ONNX Runtime's threads
            for condition in CONDITIONS:
                cells = []
                for workload in WORKLOADS:
                    values = figures.get(f"{config}|{condition}|{workload}")
                    pick = max if workload.startswith("worst") else statistics.median
                    cells.append(f"{'-' if not values else f'{pick(values):.2f}':>22}")
                label = config if config.startswith("ORT") else f"{config}, OMP {policy}"
                print(f"{f'{label}, {condition}':34}" + "".join(cells))


if __name__ == "__main__":
    main()
