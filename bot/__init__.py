"""whymoji: a Discord bot that reads the mood of a conversation with DeepMoji."""

__version__ = "0.1.0"
