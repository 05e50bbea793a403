"""Errors of the settings store, worded for the person running whymoji."""

from __future__ import annotations

from bot.errors import WhymojiError


class StoreError(WhymojiError):
    """The settings database cannot be opened or used (never carries a password)."""


class InvalidSetting(WhymojiError, ValueError):
    """A server setting or a Discord id is out of range; the message names it and the rule."""
