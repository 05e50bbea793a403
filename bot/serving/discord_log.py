"""discord.py's log without message text or interaction tokens, at every level.

At DEBUG, discord.py logs every gateway event whole (``discord.gateway``: message ``content``,
interaction ``token``\\ s) and every REST call's URL and body (``discord.http``,
``discord.webhook.async_``: an interaction's URL carries its token, a reply's body the text it
quotes); a rate-limit warning names the URL too. A token lets whoever reads the log answer as the
bot for 15 minutes, and whymoji promises never to log message text. ``withhold_discord_payloads``
puts a filter on every ``discord.*`` logger that rewrites each record before any handler sees it:

- a gateway event becomes its opcode, name and sequence number (``op 0 MESSAGE_CREATE seq 12``);
- any other structured argument (a dict, a list, bytes, a JSON body, a form) becomes
  ``<payload withheld>``;
- interaction and webhook tokens in URLs (``/interactions/<id>/<token>``,
  ``/webhooks/<id>/<token>``) become ``***``, in the message, its arguments and its traceback.

``logging.discord_payloads = true`` turns the filter off, for debugging Discord itself: the log
then holds message text and live tokens.
"""

from __future__ import annotations

import logging
import re
import traceback

#: What stands for a withheld payload in the log.
WITHHELD = "<payload withheld>"

_TOKEN_IN_URL = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/?#\s'\"]+")

#: discord.py's loggers that exist before any import of it has run them; every ``discord.*``
#: logger that exists when the filter is put on gets it too.
KNOWN_LOGGERS = (
    "discord",
    "discord.client",
    "discord.gateway",
    "discord.http",
    "discord.shard",
    "discord.state",
    "discord.webhook.async_",
    "discord.interactions",
    "discord.app_commands.tree",
    "discord.ext.commands.bot",
)


def redact_tokens(text: str) -> str:
    """``text`` with interaction and webhook tokens in URLs replaced by ``***``."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


def _safe(argument: object) -> object:
    """A log argument with nothing in it that could carry message text or a token."""
    if argument is None or isinstance(argument, bool | int | float):
        return argument
    if isinstance(argument, dict) and "op" in argument:  # a gateway payload: say what it was
        parts = [f"op {argument.get('op')}"]
        if argument.get("t"):
            parts.append(str(argument["t"]))
        if argument.get("s") is not None:
            parts.append(f"seq {argument['s']}")
        return f"{' '.join(parts)} {WITHHELD}"
    if isinstance(argument, str):
        if argument.lstrip().startswith(("{", "[")):  # a JSON body
            return WITHHELD
        return redact_tokens(argument)
    if isinstance(argument, dict | list | tuple | set | frozenset | bytes | bytearray | memoryview):
        return WITHHELD
    if isinstance(argument, BaseException):
        return redact_tokens(str(argument))
    if type(argument).__module__.startswith("aiohttp"):  # a form, a websocket frame: data inside
        return WITHHELD
    return redact_tokens(str(argument))


class PayloadFilter(logging.Filter):
    """Rewrites a ``discord.*`` record so that it holds no payload and no token; passes it on."""

    def __init__(self) -> None:
        super().__init__()
        #: ``logging.discord_payloads``: pass records through untouched.
        self.payloads = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.payloads:
            return True
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        else:
            record.msg = _safe(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _safe(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_safe(argument) for argument in record.args)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact_tokens("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return True


_FILTER = PayloadFilter()


def withhold_discord_payloads(*, payloads: bool = False) -> PayloadFilter:
    """Put the filter on every ``discord.*`` logger (once; again for loggers created since) and
    set whether payloads pass (``logging.discord_payloads``). Returns the filter."""
    _FILTER.payloads = payloads
    existing = [name for name in logging.root.manager.loggerDict if name == "discord" or name.startswith("discord.")]
    for name in {*KNOWN_LOGGERS, *existing}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    return _FILTER
