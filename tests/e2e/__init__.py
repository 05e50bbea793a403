"""End to end: the real bot against FakeDiscord (tests/fake_discord)."""
