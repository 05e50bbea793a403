"""Explanations and their rendering."""
