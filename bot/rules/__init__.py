"""Rules the features share: which messages to read, gates, scores over classes, pauses and limits. No Discord objects."""
