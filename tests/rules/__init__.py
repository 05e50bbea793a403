"""The rules the features share."""
