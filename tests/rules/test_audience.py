"""Who may see a public answer: ``audience_can_read`` against Discord's own permission algorithm,
member by member, over every combination of roles and overwrites of small servers."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.rules.audience import (
    ADMINISTRATOR,
    READ,
    READ_MESSAGE_HISTORY,
    VIEW_CHANNEL,
    ChannelRules,
    Overwrite,
    ServerRoles,
    audience_can_read,
)

EVERYONE_DEFAULT = VIEW_CHANNEL | READ_MESSAGE_HISTORY
STAFF, MUTED = 11, 12
HIDE = Overwrite(deny=VIEW_CHANNEL)
SHOW = Overwrite(allow=VIEW_CHANNEL)


def discord_permissions(roles: ServerRoles, held: tuple[int, ...], member: int, channel: ChannelRules) -> int:
    """Discord's documented computation for one member in one channel (the oracle)."""
    permissions = roles.everyone
    for role in held:
        permissions |= roles.roles[role]
    if permissions & ADMINISTRATOR:
        return -1  # everything
    permissions = (permissions & ~channel.everyone.deny) | channel.everyone.allow
    deny = allow = 0
    for role in held:
        overwrite = channel.roles.get(role, Overwrite())
        deny, allow = deny | overwrite.deny, allow | overwrite.allow
    permissions = (permissions & ~deny) | allow
    own = channel.members.get(member, Overwrite())
    return (permissions & ~own.deny) | own.allow


def leaks(roles: ServerRoles, answer: ChannelRules, source: ChannelRules) -> list[tuple]:
    """Every possible member (any roles; any member id that has an overwrite, or none) who sees
    the answer's channel but cannot read the source."""
    found = []
    members = {0, *answer.members, *source.members}
    for count in range(len(roles.roles) + 1):
        for held in itertools.combinations(roles.roles, count):
            for member in members:
                sees = discord_permissions(roles, held, member, answer) & VIEW_CHANNEL
                reads = discord_permissions(roles, held, member, source) & READ == READ
                if sees and not reads:
                    found.append((held, member))
    return found


def test_a_secret_channel_is_not_quoted_in_general():
    roles = ServerRoles(EVERYONE_DEFAULT, {STAFF: 0})
    general, secret = ChannelRules(), ChannelRules(everyone=HIDE, roles={STAFF: SHOW})
    assert not audience_can_read(roles, general, secret)
    assert audience_can_read(roles, secret, general)  # everyone in #secret can read #general
    assert audience_can_read(roles, secret, secret) and audience_can_read(roles, general, general)


def test_staff_channels_quote_each_other_when_only_staff_sees_either():
    roles = ServerRoles(EVERYONE_DEFAULT, {STAFF: 0, MUTED: 0})
    staff = ChannelRules(everyone=HIDE, roles={STAFF: SHOW})
    logs = ChannelRules(everyone=HIDE, roles={STAFF: Overwrite(allow=READ)})
    assert audience_can_read(roles, staff, logs) and audience_can_read(roles, logs, staff)
    muted_out_of_logs = ChannelRules(everyone=HIDE, roles={STAFF: SHOW, MUTED: HIDE})
    # A muted staff member sees #staff, and STAFF's allow beats MUTED's deny: still readable.
    assert audience_can_read(roles, staff, muted_out_of_logs)


def test_a_role_deny_or_a_missing_history_permission_keeps_it_private():
    roles = ServerRoles(EVERYONE_DEFAULT, {MUTED: 0})
    assert not audience_can_read(roles, ChannelRules(), ChannelRules(roles={MUTED: HIDE}))
    no_history = ChannelRules(everyone=Overwrite(deny=READ_MESSAGE_HISTORY))
    assert not audience_can_read(roles, ChannelRules(), no_history)
    assert not audience_can_read(roles, no_history, no_history)  # some can see new messages only


def test_member_overwrites():
    roles = ServerRoles(EVERYONE_DEFAULT, {})
    banned_from_source = ChannelRules(members={7: HIDE})
    assert not audience_can_read(roles, ChannelRules(), banned_from_source)
    assert audience_can_read(roles, ChannelRules(members={7: HIDE}), banned_from_source)  # 7 sees neither
    assert audience_can_read(roles, ChannelRules(), banned_from_source, exempt={7})
    hidden = ChannelRules(everyone=HIDE)
    assert not audience_can_read(roles, ChannelRules(everyone=HIDE, members={8: SHOW}), hidden)
    guest = ChannelRules(everyone=HIDE, members={8: SHOW})
    assert audience_can_read(roles, guest, ChannelRules(everyone=HIDE, members={8: Overwrite(allow=READ)}))


BITS = (0, VIEW_CHANNEL, READ_MESSAGE_HISTORY, READ)


def random_overwrite(rng: random.Random) -> Overwrite:
    allow = rng.choice(BITS)
    return Overwrite(allow, rng.choice(BITS) & ~allow)


def random_rules(rng: random.Random, role_ids: list[int], member_ids: list[int]) -> ChannelRules:
    return ChannelRules(
        everyone=random_overwrite(rng) if rng.random() < 0.7 else Overwrite(),
        roles={role: random_overwrite(rng) for role in role_ids if rng.random() < 0.5},
        members={member: random_overwrite(rng) for member in member_ids if rng.random() < 0.3},
    )


@pytest.mark.parametrize("seed", range(4))
def test_never_says_yes_when_some_member_could_see_the_answer_but_not_read_the_source(seed):
    rng = random.Random(seed)
    said_yes = 0
    for _ in range(1500):
        role_ids = [21, 22, 23][: rng.randint(0, 3)]
        everyone = rng.choice(BITS) | (ADMINISTRATOR if rng.random() < 0.02 else 0)
        roles = ServerRoles(
            everyone, {role: rng.choice(BITS) | (ADMINISTRATOR if rng.random() < 0.05 else 0) for role in role_ids}
        )
        answer, source = random_rules(rng, role_ids, [7, 8]), random_rules(rng, role_ids, [7, 8])
        if audience_can_read(roles, answer, source):
            said_yes += 1
            assert leaks(roles, answer, source) == [], (roles, answer, source)
    assert said_yes > 100  # and it is not a rule that refuses everything
