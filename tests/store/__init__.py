"""The settings store: its contract (every backend and FakeStore), migrations, probe, status."""
