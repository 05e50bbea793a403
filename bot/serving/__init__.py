"""Serving the model to the features: loading it, the inference worker, per-message predictions, health."""
