"""The DeepMoji engine: tokenizer, model, weights and the 64 emoji classes. No Discord here."""
