"""Who may see a public answer that quotes a message: everyone who can see the answer's channel
must be able to read the message's channel, or the answer stays private.

Discord computes a member's permissions in a channel in four steps: the server-wide permissions
of @everyone and of each of the member's roles, OR-ed (Administrator: everything, overwrites
ignored); then the channel's @everyone overwrite (deny, then allow); then the overwrites of the
member's roles, together (all their denies, then all their allows); then the member's own
overwrite. A thread takes its parent channel's. Reading a message's history needs View Channel
and Read Message History.

The bot does not know every member's roles (it has no members intent), so ``audience_can_read``
answers for every member that *could* exist, from the roles and overwrites alone, and says no
whenever it cannot be sure:

- who can see the answer's channel: if @everyone alone can, every member; otherwise only the
  holders of a role that lets them in (a server-wide View Channel that the channel's @everyone
  overwrite does not take away, or a role overwrite that allows it), members whose own overwrite
  allows it, and administrators;
- what a holder of role R can be sure of in the source channel, whatever other roles they hold:
  the server-wide permissions of @everyone and R, after the @everyone overwrite, minus every
  role overwrite's deny (they might hold all those roles), plus R's own overwrite's allow;
- a member's own overwrite in the source that takes reading away is safe only if the same
  member's overwrite in the answer's channel denies them View Channel; a member whose own
  overwrite lets them see the answer's channel must be able to read the source as any member can.

No Discord objects: permissions are Discord's integer bit sets; ``cogs/why.py`` reads them from
discord.py's roles and channels.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
READ_MESSAGE_HISTORY = 1 << 16
#: What reading a channel's messages takes.
READ = VIEW_CHANNEL | READ_MESSAGE_HISTORY


@dataclass(frozen=True)
class Overwrite:
    """One channel overwrite: the permissions it allows and denies (Discord's bit sets)."""

    allow: int = 0
    deny: int = 0


NO_OVERWRITE = Overwrite()


@dataclass(frozen=True)
class ChannelRules:
    """A channel's permission overwrites (for a thread: its parent channel's)."""

    everyone: Overwrite = NO_OVERWRITE
    roles: Mapping[int, Overwrite] = field(default_factory=dict)  #: role id -> overwrite
    members: Mapping[int, Overwrite] = field(default_factory=dict)  #: member id -> overwrite


@dataclass(frozen=True)
class ServerRoles:
    """The server-wide permissions of @everyone and of every other role."""

    everyone: int
    roles: Mapping[int, int] = field(default_factory=dict)  #: role id -> permissions


def _after_everyone(permissions: int, rules: ChannelRules) -> int:
    return (permissions & ~rules.everyone.deny) | rules.everyone.allow


def _has(permissions: int, wanted: int) -> bool:
    return permissions & wanted == wanted


def audience_can_read(
    roles: ServerRoles, answer: ChannelRules, source: ChannelRules, *, exempt: Collection[int] = ()
) -> bool:
    """Whether every member who can see the ``answer`` channel can read the ``source`` channel's
    messages; ``False`` whenever the roles and overwrites leave any doubt. ``exempt`` members
    (the bot, the server's owner) read everything anyway."""
    denied_by_any_role = 0
    for overwrite in source.roles.values():
        denied_by_any_role |= overwrite.deny
    # What any member at all can be sure of in the source, before their own overwrite.
    anyone = _after_everyone(roles.everyone, source) & ~denied_by_any_role
    if roles.everyone & ADMINISTRATOR:
        anyone = READ

    def holder_reads(permissions: int, role_allow: int) -> bool:
        """Every holder of a role with these server-wide permissions and this source overwrite."""
        if permissions & ADMINISTRATOR:
            return True
        sure = _after_everyone(roles.everyone | permissions, source) & ~denied_by_any_role
        return _has(sure | role_allow, READ)

    if not _doorways_read(roles, answer, source, holder_reads):
        return False
    for member_id, overwrite in source.members.items():
        taken = overwrite.deny & READ & ~overwrite.allow
        if member_id in exempt or not taken:
            continue
        in_answer = answer.members.get(member_id, NO_OVERWRITE)
        if not (in_answer.deny & VIEW_CHANNEL and not in_answer.allow & VIEW_CHANNEL):
            return False  # they may see the answer and cannot read the source
    for member_id, overwrite in answer.members.items():
        if member_id in exempt or not overwrite.allow & VIEW_CHANNEL:
            continue
        own = source.members.get(member_id, NO_OVERWRITE)
        if not _has((anyone & ~own.deny) | own.allow, READ):
            return False  # let into the answer's channel by name, not sure to read the source
    return True


def _doorways_read(
    roles: ServerRoles, answer: ChannelRules, source: ChannelRules, holder_reads: Callable[[int, int], bool]
) -> bool:
    """Every way in to the answer's channel by roles leads to members who can read the source."""
    if roles.everyone & ADMINISTRATOR or _after_everyone(roles.everyone, answer) & VIEW_CHANNEL:
        # @everyone alone sees it: every member does, and every member holds @everyone.
        return holder_reads(roles.everyone, 0)
    for role_id, permissions in roles.roles.items():
        in_answer = answer.roles.get(role_id, NO_OVERWRITE)
        lets_in = (
            permissions & ADMINISTRATOR
            or in_answer.allow & VIEW_CHANNEL
            or (permissions & VIEW_CHANNEL and not answer.everyone.deny & VIEW_CHANNEL)
        )
        if lets_in and not holder_reads(permissions, source.roles.get(role_id, NO_OVERWRITE).allow):
            return False
    return True
