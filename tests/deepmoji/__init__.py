"""The engine: tokenizer, model, runtimes, files, emojis."""
