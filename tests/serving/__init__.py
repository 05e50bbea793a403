"""The worker, per-message predictions, health."""
