"""Replies and the explanation menus."""
