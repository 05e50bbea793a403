"""The filter on discord.py's loggers: no payload, no token, at any level, unless asked."""

from __future__ import annotations

import json
import logging

import pytest

from bot.serving.discord_log import WITHHELD, redact_tokens, withhold_discord_payloads

TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZg"
URL = f"https://discord.com/api/v10/interactions/123456789/{TOKEN}/callback?with_response=1"


@pytest.fixture
def records(caplog):
    withhold_discord_payloads()
    caplog.set_level(logging.DEBUG)
    yield caplog
    withhold_discord_payloads()


def logged(caplog) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    return "\n".join(handler.format(record) for record in caplog.records)


def test_tokens_in_urls_are_hidden():
    assert redact_tokens(URL) == "https://discord.com/api/v10/interactions/123456789/***/callback?with_response=1"
    webhook = f"POST https://discord.com/api/v10/webhooks/42/{TOKEN}/messages/@original"
    assert redact_tokens(webhook) == "POST https://discord.com/api/v10/webhooks/42/***/messages/@original"
    assert redact_tokens("/channels/1/messages/2") == "/channels/1/messages/2"


def test_gateway_events_rest_bodies_and_warnings_keep_no_text_and_no_token(records):
    event = {"op": 0, "t": "MESSAGE_CREATE", "s": 7, "d": {"content": "my secret words", "token": TOKEN}}
    logging.getLogger("discord.gateway").debug("For Shard ID %s: WebSocket Event: %s", 0, event)
    body = json.dumps({"content": "my secret words"})
    logging.getLogger("discord.http").debug("%s %s with %s has returned %s", "POST", URL, body, 200)
    logging.getLogger("discord.http").debug("%s %s has received %s", "GET", URL, {"content": "my secret words"})
    logging.getLogger("discord.http").warning("We are being rate limited. %s %s responded with 429.", "POST", URL)
    try:
        raise RuntimeError(f"request to {URL} failed")
    except RuntimeError:
        logging.getLogger("discord.client").exception("Ignoring exception in %s", "on_message")
    text = logged(records)
    assert "secret" not in text and TOKEN not in text
    assert "WebSocket Event: op 0 MESSAGE_CREATE seq 7 " + WITHHELD in text
    assert (
        f"POST https://discord.com/api/v10/interactions/123456789/***/callback?with_response=1 with {WITHHELD}" in text
    )
    assert "RuntimeError: request to https://discord.com/api/v10/interactions/123456789/***/callback" in text


def test_other_loggers_and_the_setting(records):
    logging.getLogger("cogs.reactions").info("message %s: reactions shed %s", 1, {"cooldown": 1})
    withhold_discord_payloads(payloads=True)
    logging.getLogger("discord.http").debug("%s %s has received %s", "GET", URL, {"content": "raw words"})
    text = logged(records)
    assert "{'cooldown': 1}" in text  # whymoji's own log is whymoji's business: it logs no text
    assert "raw words" in text and TOKEN in text
