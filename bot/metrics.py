"""Prometheus metrics of one bot process, kept in their own registry so tests stay isolated."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Every counter, gauge and histogram the bot exports on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_seen = Counter(
            "whymoji_messages_seen", "Messages seen in channels with reactions enabled", registry=r
        )
        self.reactions_placed = Counter("whymoji_reactions_placed", "Emoji reactions placed on messages", registry=r)
        self.reactions_shed = Counter(
            "whymoji_reactions_shed",
            "Automatic reactions deliberately dropped",
            ["reason"],
            registry=r,
        )
        self.hints_posted = Counter("whymoji_moderation_hints", "Moderation hints posted", registry=r)
        self.hints_shed = Counter(
            "whymoji_moderation_hints_shed",
            "Messages not checked for a moderation hint, or hints not posted",
            ["reason"],
            registry=r,
        )
        self.worker_requests = Counter(
            "whymoji_worker_requests",
            "Requests the inference worker ended, by kind (predict, explain) and outcome "
            "(done, refused, overload, shutdown, model_error, abandoned)",
            ["kind", "outcome"],
            registry=r,
        )
        self.why_requests = Counter("whymoji_why_requests", "/why explanations answered", registry=r)
        self.why_picks = Counter(
            "whymoji_why_picks",
            "Picks in the menus under explanations, by answer (kept: from a kept explanation; "
            "recomputed; expired: a typed text no longer kept; refused; failed)",
            ["answer"],
            registry=r,
        )
        self.why_kept_evictions = Counter(
            "whymoji_why_kept_evictions",
            "Kept explanations dropped to stay within why.kept_bytes (or too big to keep at all)",
            registry=r,
        )
        self.why_kept_bytes = Gauge("whymoji_why_kept_bytes", "Bytes held by kept explanations", registry=r)
        self.batch_size = Histogram(
            "whymoji_batch_size",
            "Requests per model run",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.queue_depth = Gauge("whymoji_queue_depth", "Requests waiting for the model", registry=r)
        self.inference_seconds = Histogram(
            "whymoji_inference_seconds",
            "Time from request to result in the inference worker",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
