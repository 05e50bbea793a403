"""The fake Discord against the unmodified discord.py client (no whymoji code but endpoints)."""

from __future__ import annotations

import asyncio
import json
import zlib

import aiohttp
import discord
import pytest
from discord import app_commands

from bot.serving.discord_proxy import EndpointError, current_endpoints, use_endpoints
from tests.fake_discord import CommandNotRegistered, ComponentNotFound, FakeDiscord
from tests.fake_discord.client import connected


class QuickClient(discord.AutoShardedClient):
    """discord.py waits 5 s before every identify but the first (Discord's identify limit);
    the fake has no such limit, so the supported hook skips the wait."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def make_client(*, content: bool = True, members: bool = False, shard_count: int | None = None) -> QuickClient:
    intents = discord.Intents.default()
    intents.message_content = content
    intents.members = members
    return QuickClient(intents=intents, guild_ready_timeout=0.1, shard_count=shard_count)


class Recorder(QuickClient):
    """Reacts to each message with the emojis named in it, in order, and remembers what it saw."""

    def __init__(self, **options) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.1, **options)
        self.seen: list[int] = []
        self.errors: list[Exception] = []

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message.id)
        for emoji in message.content.split():
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as error:
                self.errors.append(error)
                return


async def test_endpoints_validate_and_restore():
    before = current_endpoints()
    with pytest.raises(EndpointError, match="api_base_url"):
        use_endpoints("ftp://example.org/api", None)
    with pytest.raises(EndpointError, match="gateway_url"):
        use_endpoints(None, "ftp://127.0.0.1:1/gateway")
    previous = use_endpoints("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gw")
    assert previous == before
    assert current_endpoints().api_base_url == "http://127.0.0.1:9/api/v10"
    assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
    use_endpoints(previous.api_base_url, previous.gateway_url)
    assert current_endpoints() == before


async def test_client_connects_with_zlib_and_sees_the_world():
    async with FakeDiscord() as fake:
        client = make_client(members=True)
        async with connected(client, fake):
            guild = client.get_guild(fake.guild.id)
            assert guild is not None and guild.member_count == len(fake.guild.members)
            general = guild.get_channel(fake.general.id)
            me = guild.me
            assert me.id == fake.bot_user.id
            permissions = general.permissions_for(me)
            assert permissions.add_reactions and permissions.send_messages and permissions.read_message_history
            assert guild.get_member(fake.moderator.id).guild_permissions.manage_guild
            assert not guild.get_member(fake.alice.id).guild_permissions.manage_guild
            _path, query, kind = fake.gateway.connections[0]
            assert kind == "identify" and "compress=zlib-stream" in query and "encoding=json" in query
            assert fake.gateway.heartbeats >= 1
        assert fake.unknown_routes == []


async def test_reactions_in_order_with_url_encoded_emoji():
    async with FakeDiscord() as fake:
        client = Recorder()
        async with connected(client, fake):
            message = await fake.send_message(fake.general, fake.alice, "😂 ❤️ 👍🏽")
            await fake.wait_for(lambda: len(message.reactions) == 3, 10, "three reactions")
        assert message.reactions == ["😂", "❤️", "👍🏽"]
        assert all(call.status == 204 for call in fake.calls("PUT", "/reactions/"))


async def test_injected_429s_are_retried_by_discord_py_and_nothing_is_lost():
    async with FakeDiscord() as fake:
        client = Recorder()
        async with connected(client, fake):
            fake.rate_limit_reactions(2, retry_after=0.05)
            message = await fake.send_message(fake.general, fake.alice, "😂 😭")
            await fake.wait_for(lambda: len(message.reactions) == 2, 10, "reactions after 429s")
        statuses = [call.status for call in fake.calls("PUT", "/reactions/")]
        assert statuses == [429, 429, 204, 204]
        assert message.reactions == ["😂", "😭"] and client.errors == []


async def test_bucket_headers_let_discord_py_pace_itself_without_429s():
    async with FakeDiscord(reaction_limit=(1, 0.2)) as fake:
        client = Recorder()
        async with connected(client, fake):
            message = await fake.send_message(fake.general, fake.alice, "😂 😭 👍")
            await fake.wait_for(lambda: len(message.reactions) == 3, 10, "three paced reactions")
        # One reaction per window: a 429 would show that discord.py ignored the bucket headers.
        assert [call.status for call in fake.calls("PUT", "/reactions/")] == [204, 204, 204]


async def test_forbidden_channel_answers_403():
    async with FakeDiscord() as fake:
        secret = fake.add_channel("secret")
        fake.forbid_channel(secret)
        client = Recorder()
        async with connected(client, fake):
            await fake.send_message(secret, fake.alice, "😂")
            await fake.wait_for(lambda: client.errors, 10, "a Forbidden error")
        assert isinstance(client.errors[0], discord.Forbidden) and client.errors[0].code == 50013


async def test_reconnect_mid_burst_resumes_and_replays_every_event_once():
    async with FakeDiscord() as fake:
        client = Recorder()
        async with connected(client, fake):
            sent = [await fake.send_message(fake.general, fake.alice, f"hello {n}") for n in range(5)]
            await fake.reconnect()
            sent += [await fake.send_message(fake.general, fake.alice, f"hello {n}") for n in range(5, 12)]
            await fake.wait_for(lambda: len(client.seen) >= 12, 15, "all messages after the resume")
            await asyncio.sleep(0.1)
        assert client.seen == [m.id for m in sent]
        kinds = [(path, kind) for path, _, kind in fake.gateway.connections]
        assert kinds == [("/gateway-ws", "identify"), ("/gateway-ws/resume", "resume")]


async def test_invalid_session_makes_the_client_identify_again_through_the_endpoints():
    async with FakeDiscord() as fake:
        client = Recorder()
        async with connected(client, fake):
            first = fake.gateway.sessions[0].id
            await fake.invalidate_session(resumable=False)
            await fake.wait_for(
                lambda: 0 in fake.gateway.sessions and fake.gateway.sessions[0].id != first, 15, "a new session"
            )
            await fake.wait_until_connected()
            message = await fake.send_message(fake.general, fake.alice, "👍")
            await fake.wait_for(lambda: message.reactions == ["👍"], 10, "a reaction on the new session")
        assert [kind for _, _, kind in fake.gateway.connections] == ["identify", "identify"]


async def test_sharded_client_with_a_set_shard_count_reaches_the_fake_gateway():
    async with FakeDiscord(shard_count=2) as fake:
        other = fake.add_guild("second", shard=1 - fake.shard_of(fake.guild.id))
        client = make_client(shard_count=2)
        async with connected(client, fake):
            await fake.wait_until_connected()
            assert {s.shard for s in fake.gateway.sessions.values()} == {(0, 2), (1, 2)}
            shards = {client.get_guild(guild.id).shard_id for guild in (fake.guild, other)}
            assert shards == {0, 1}
        assert not fake.calls("GET", "/gateway/bot")


async def test_message_content_is_blank_without_the_intent():
    async with FakeDiscord() as fake:
        client = make_client(content=False)
        contents: list[str] = []

        @client.event
        async def on_message(message):
            contents.append(message.content)

        async with connected(client, fake):
            await fake.send_message(fake.general, fake.alice, "secret words")
            await fake.send_message(fake.general, fake.alice, f"<@{fake.bot_user.id}> hi")
            await fake.wait_for(lambda: len(contents) == 2, 10, "two messages")
        assert contents == ["", f"<@{fake.bot_user.id}> hi"]


def command_client():
    """A client with a ``/tool echo`` subcommand and a message context menu."""
    client = make_client()
    tree = app_commands.CommandTree(client)
    group = app_commands.Group(name="tool", description="tools")

    @group.command(name="echo", description="echo text")
    async def echo(interaction: discord.Interaction, text: str, times: int = 1, who: discord.Member | None = None):
        await interaction.response.send_message(
            f"{text * times} {who.display_name if who else ''}".strip(),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @tree.context_menu(name="Shout")
    async def shout(interaction: discord.Interaction, message: discord.Message):
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(message.content.upper())

    tree.add_command(group)
    client.tree = tree
    return client


async def test_slash_commands_and_context_menus_round_trip():
    async with FakeDiscord() as fake:
        client = command_client()
        async with connected(client, fake):
            synced = await client.tree.sync()
            assert {c.name for c in synced} == {"tool", "Shout"}
            record = await fake.slash(fake.alice, fake.general, "tool echo", text="ab", times=2, who=fake.moderator)
            await fake.wait_for(lambda: record.answered, 10, "the echo answer")
            target = await fake.send_message(fake.general, fake.alice, "quiet please")
            shout = await fake.message_command(fake.moderator, target, "Shout")
            await fake.wait_for(lambda: shout.answered, 10, "the shout answer")
            with pytest.raises(CommandNotRegistered, match="no option 'txt'"):
                await fake.slash(fake.alice, fake.general, "tool echo", txt="x")
        assert record.original.content == "abab moderator"
        assert record.original.flags & 64 and record.bodies()[0]["allowed_mentions"]["parse"] == []
        assert shout.callback_type == 5 and shout.original.content == "QUIET PLEASE"
        assert [kind for kind, _ in shout.responses] == ["callback", "followup"]
        assert fake.unknown_routes == []


class Chooser(discord.ui.View):
    """A select menu whose pick updates its message (type 7), or answers privately when ``privately``."""

    def __init__(self, privately: bool = False) -> None:
        super().__init__(timeout=None)
        self.privately = privately

    @discord.ui.select(custom_id="choose", options=[discord.SelectOption(label=n, value=n) for n in ("red", "blue")])
    async def choose(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        if self.privately:
            await interaction.response.send_message(f"you chose {select.values[0]}", ephemeral=True, view=Chooser())
        else:
            await interaction.response.edit_message(content=f"chosen: {select.values[0]}")


async def test_component_interactions_round_trip_within_discords_limits():
    async with FakeDiscord() as fake:
        client = make_client()
        async with connected(client, fake):
            channel = client.get_channel(fake.general.id)
            posted = await channel.send("pick a colour", view=Chooser())
            message = fake.world.messages[posted.id]
            assert list(fake.selects(message)) == ["choose"]
            update = await fake.pick(fake.alice, message, "choose", "blue")
            await fake.wait_for(lambda: update.acknowledged, 10, "the update")
            with pytest.raises(ComponentNotFound, match="no option 'green'"):
                await fake.pick(fake.alice, message, "choose", "green")
            with pytest.raises(ComponentNotFound, match="no select menu"):
                await fake.pick(fake.alice, message, "other", "red")
            private = await channel.send("pick privately", view=Chooser(privately=True))
            answer = await fake.pick(fake.alice, fake.world.messages[private.id], "choose", "red")
            await fake.wait_for(lambda: answer.answered, 10, "the private answer")
            with pytest.raises(ComponentNotFound, match="ephemeral"):
                await fake.pick(fake.moderator, answer.original, "choose", "red")
            with pytest.raises(discord.HTTPException, match="Invalid Form Body"):
                await channel.send("x" * 2001)
            too_many = discord.ui.View()
            too_many.add_item(discord.ui.Select(options=[discord.SelectOption(label=str(n)) for n in range(26)]))
            with pytest.raises(discord.HTTPException, match="26 options"):
                await channel.send("menu", view=too_many)
        assert update.callback_type == 7 and update.original is message and message.content == "chosen: blue"
        assert answer.callback_type == 4 and answer.original.flags & 64 and answer.original.visible_to == fake.alice.id
        assert fake.selects(answer.original) and answer.original.content == "you chose red"
        assert len(fake.invalid_bodies) == 2
        assert fake.unknown_routes == []


async def test_unknown_routes_are_404_and_recorded_and_rest_needs_the_token():
    async with FakeDiscord() as fake:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bot {fake.token}"}
            async with session.get(f"{fake.api_base_url}/voice/regions", headers=headers) as response:
                assert response.status == 404
            async with session.get(f"{fake.api_base_url}/users/@me") as response:
                assert response.status == 401
        assert fake.unknown_routes == ["GET /api/v10/voice/regions"]


async def test_plain_json_gateway_and_bad_token():
    async with FakeDiscord() as fake:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["op"] == 10
                await ws.send_json({"op": 2, "d": {"token": fake.token, "intents": 0}})
                ready = await ws.receive_json(timeout=5)
                guild = await ws.receive_json(timeout=5)
                assert (ready["t"], ready["s"], guild["t"], guild["s"]) == ("READY", 1, "GUILD_CREATE", 2)
            async with session.ws_connect(f"{fake.gateway_url}?v=10&encoding=json&compress=zlib-stream") as ws:
                inflate = zlib.decompressobj()
                frame = await ws.receive_bytes(timeout=5)
                assert frame.endswith(b"\x00\x00\xff\xff")
                assert json.loads(inflate.decompress(frame))["op"] == 10
                await ws.send_json({"op": 2, "d": {"token": "wrong"}})
                closing = await ws.receive(timeout=5)
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4004


async def test_events_without_a_session_are_recorded_as_dropped():
    async with FakeDiscord() as fake:
        message = await fake.send_message(fake.general, fake.alice, "nobody listens")
        assert fake.dropped_events == ["MESSAGE_CREATE"] and message.id in fake.world.messages


async def test_wait_for_is_bounded():
    async with FakeDiscord() as fake:
        with pytest.raises(TimeoutError, match="nothing"):
            await fake.wait_for(lambda: False, 0.2, "nothing")
