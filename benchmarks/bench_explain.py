"""Occlusion speed and memory: the batched explainer against brute force, side by side in one run.

Full published size with seeded weights (``seeded_state_dict(1)``). For each message length:

* ``reference``: the plain per-timestep model (``bot.deepmoji.reference``) on the N + 1
  sequences brute force needs, 32 at a time (only up to ``--reference-max`` tokens: it is slow);
* ``ref 1-by-1``: the same reference run once per variant, as the original DeepMoji demo ran
  the model once per word;
* ``predict``: the fast model's batched ``predict`` on the same N + 1 sequences (32 at a time);
* ``exact``: ``bot.explain.occlusion``;
* ``window W``: the explicit approximation, with its distance to the exact scores (Spearman
  rank correlation, max abs error, top-3 words agreement).

Times are the best of ``--repeats`` runs after a warm-up; ``peak MB`` is the resident memory the
call added at its peak (Linux ``VmHWM``, reset before each call). The methods are run in
interleaved rounds so that the machine's noise hits them alike. Usage:

    .venv/bin/python benchmarks/bench_explain.py [--lengths 30 100 400] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bot.deepmoji.model import DeepMoji
from bot.deepmoji.reference import ReferenceDeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.explain import occlusion

PREDICT_BATCH = 32


def brute_force(predict, ids: list[int], top_k: int = 5, batch: int = PREDICT_BATCH) -> np.ndarray:
    """The definition: N + 1 predictions (variants ``batch`` at a time)."""
    p = predict([ids])[0]
    top = np.argsort(-p)[:top_k]
    variants = [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
    q = np.concatenate([predict(variants[i : i + batch]) for i in range(0, len(variants), batch)])
    return (p[top] - q[:, top]).sum(axis=1)


def _status_kb(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def measure(methods: dict[str, object], repeats: int) -> dict[str, tuple[float, float | None, object]]:
    """name -> (best seconds, peak added MB or None off Linux, result), the methods interleaved.

    Each round runs every method once, so a busy spell of the machine hits all of them; the
    best of the rounds is the figure. The peak is taken in the first round.
    """
    best: dict[str, float] = {name: float("inf") for name in methods}
    peaks: dict[str, float | None] = {}
    results: dict[str, object] = {}
    for round_ in range(repeats):
        for name, function in methods.items():
            before = _status_kb("VmRSS")
            if round_ == 0 and before is not None:
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            start = time.perf_counter()
            results[name] = function()
            best[name] = min(best[name], time.perf_counter() - start)
            if round_ == 0:
                peaks[name] = None if before is None else max(_status_kb("VmHWM") - before, 0) / 1024
    return {name: (best[name], peaks[name], results[name]) for name in methods}


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share), for Spearman's correlation without scipy."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the k best words of ``b`` that are also among the k best of ``a``."""
    return len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 100, 400])
    parser.add_argument("--windows", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--reference-max", type=int, default=30, help="longest message run on the reference")
    parser.add_argument("--repeats", type=int, default=5, help="rounds for messages up to 30 tokens")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    state = seeded_state_dict(1)
    model = DeepMoji()
    model.load_state_dict(state)
    model = model.to(args.device).eval()
    reference = ReferenceDeepMoji(state)
    rng = np.random.default_rng(0)
    warm = rng.integers(10, 50_000, 8).tolist()
    occlusion(model, warm), model.predict([warm]), reference.predict([warm])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"seeded full-size DeepMoji; times are the best of {args.repeats} interleaved rounds (1 above 30 tokens)")
    print(f"{'tokens':>6}  {'method':<12} {'seconds':>9} {'vs reference':>12} {'vs 1-by-1':>10} {'vs predict':>10} "
          f"{'peak MB':>8}  {'max |err|':>9} {'spearman':>8} {'top-3':>5}")
    for length in args.lengths:
        ids = rng.integers(10, 50_000, length).tolist()
        repeats = args.repeats if length <= 30 else 1
        methods = {}
        if length <= args.reference_max:
            methods["reference"] = lambda: brute_force(reference.predict, ids)
            methods["ref 1-by-1"] = lambda: brute_force(reference.predict, ids, batch=1)
        methods["predict"] = lambda: brute_force(model.predict, ids)
        methods["exact"] = lambda: occlusion(model, ids)
        for window in args.windows:
            if window < length - 1:
                methods[f"window {window}"] = lambda window=window: occlusion(model, ids, window=window)
        measured = measure(methods, repeats)
        reference_s = measured["reference"][0] if "reference" in measured else None
        one_by_one_s = measured["ref 1-by-1"][0] if "ref 1-by-1" in measured else None
        predict_s, _, brute = measured["predict"]
        exact = measured["exact"][2]
        rows = []
        for name, (seconds, peak, result) in measured.items():
            extra = None
            if name == "exact":
                extra = np.abs(exact - brute).max()
            elif name.startswith("window"):
                extra = result
            rows.append((name, seconds, peak, extra))
        for name, seconds, peak, extra in rows:
            versus_reference = f"{reference_s / seconds:11.1f}x" if reference_s else f"{'-':>12}"
            versus_one_by_one = f"{one_by_one_s / seconds:9.1f}x" if one_by_one_s else f"{'-':>10}"
            quality = ""
            if isinstance(extra, np.ndarray):
                quality = (f"{np.abs(extra - exact).max():9.2e} {spearman(extra, exact):8.4f} "
                           f"{top_agreement(extra, exact, 3):5.2f}")
            elif extra is not None:
                quality = f"{extra:9.2e}"  # exact vs brute force
            peak_text = f"{peak:8.0f}" if peak is not None else f"{'-':>8}"
            print(f"{length:>6}  {name:<12} {seconds:9.3f} {versus_reference} {versus_one_by_one} {predict_s / seconds:9.1f}x "
                  f"{peak_text}  {quality}", flush=True)


if __name__ == "__main__":
    main()
