"""Point the unmodified discord.py client at a REST base URL and a gateway URL.

Big deployments put a REST proxy (shared rate limits) and a gateway proxy in front of Discord;
our end-to-end tests put a fake Discord there. discord.py (2.x) has no per-client setting for
either address, but it reads both from two class attributes every time it needs them:

* ``discord.http.Route.BASE`` prefixes every REST route (``/users/@me``, reactions,
  interaction callbacks and webhooks alike), so one assignment moves all REST traffic.
* ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` is where a shard connects whenever it
  has no better URL: ``AutoShardedClient`` uses it outright when ``shard_count`` is set (it
  asks ``GET /gateway/bot`` only when it is not, and then connects where that answer says), and
  every shard falls back to it after an ``INVALID_SESSION`` or a failed resume. Without this a
  configured shard count, or a single invalidated session, would quietly bypass the proxy.

Resumes go to the ``resume_gateway_url`` of the ``READY`` event, which is whatever the gateway
(or the proxy in front of it) sends: a gateway proxy must rewrite that field to itself, as
such proxies do, or resumes will go straight to Discord.

This replaces no discord.py code and subclasses nothing, so upgrades keep working; the price
is that the setting is process-wide, which is what one bot per process needs. Call it before
``login``. It returns the previous endpoints so a caller (a test) can put them back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.errors import WhymojiError

log = logging.getLogger(__name__)

_REST_SCHEMES = ("http", "https")
#: aiohttp opens websockets on http(s) URLs too, and the config accepts both spellings.
_GATEWAY_SCHEMES = ("ws", "wss", "http", "https")


class EndpointError(WhymojiError):
    """An endpoint URL discord.py could not use."""


@dataclass(frozen=True)
class Endpoints:
    """Where discord.py sends REST requests (``.../api/v10``) and opens gateway sockets."""

    api_base_url: str
    gateway_url: str


def current_endpoints() -> Endpoints:
    """The endpoints discord.py uses right now."""
    return Endpoints(Route.BASE, str(DiscordWebSocket.DEFAULT_GATEWAY))


def use_endpoints(api_base_url: str | None = None, gateway_url: str | None = None) -> Endpoints:
    """Send discord.py's REST traffic to ``api_base_url`` and its gateway sockets to ``gateway_url``.

    ``None`` leaves that endpoint as it is. ``api_base_url`` includes the API version, like
    Discord's own ``https://discord.com/api/v10``. Returns the endpoints in use before the call.
    """
    previous = current_endpoints()
    if api_base_url is not None:
        Route.BASE = _checked(api_base_url, _REST_SCHEMES, "api_base_url").rstrip("/")
        log.info("discord REST base set to %s", Route.BASE)
    if gateway_url is not None:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_checked(gateway_url, _GATEWAY_SCHEMES, "gateway_url"))
        log.info("discord gateway set to %s", DiscordWebSocket.DEFAULT_GATEWAY)
    return previous


def _checked(url: str, schemes: tuple[str, ...], name: str) -> str:
    parsed = yarl.URL(url)
    if parsed.scheme not in schemes or not parsed.host:
        raise EndpointError(f"{name}: must be a {' or '.join(schemes)} URL with a host, got {url!r}")
    return url
