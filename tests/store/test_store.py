"""The settings store, one suite over both backends.

SQLite always runs; PostgreSQL runs when ``WHYMOJI_TEST_POSTGRES_URL`` names a database the
tests may create schemas in (``.ci/run`` starts one in CI). Each PostgreSQL test gets a fresh
schema, chosen through the URL's ``search_path``, and drops it afterwards.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.config import load_config
from bot.store import GuildDefaults, InvalidSetting, StoreError, open_store
from bot.store.schema import LATEST_VERSION
from tests.conftest import free_port
from tests.store.support import CHANNEL, DEFAULTS, GUILD, OTHER_CHANNEL, OTHER_GUILD, USER, run_sql


async def test_a_new_guild_gets_the_defaults(any_store):
    settings = await any_store.get_guild(GUILD)
    assert settings.guild_id == GUILD
    assert settings.enabled_channels == frozenset()
    assert (settings.top_k, settings.threshold, settings.cooldown_s) == (3, 0.1, 2.0)
    assert settings.mod_channel_id is None
    assert settings.mod_threshold == 0.5
    assert (settings.min_known, settings.blocked, settings.distress, settings.chance) == (
        DEFAULTS.min_known,
        DEFAULTS.blocked,
        DEFAULTS.distress,
        DEFAULTS.chance,
    )


async def test_reaction_rules_are_stored_and_reset(any_store):
    changed = await any_store.update_guild(GUILD, min_known=0.8, blocked={42, 51, 3}, distress=1.0, chance=25)
    assert (changed.min_known, changed.blocked, changed.distress, changed.chance) == (0.8, {3, 42, 51}, 1.0, 25)
    assert await any_store.get_guild(GUILD) == changed
    emptied = await any_store.update_guild(GUILD, blocked=frozenset())  # a chosen empty list, not the default
    assert emptied.blocked == frozenset()
    reset = await any_store.update_guild(GUILD, min_known=None, blocked=None, distress=None, chance=None)
    assert (reset.min_known, reset.blocked, reset.distress, reset.chance) == (0.5, {42}, 0.5, 100)


async def test_block_and_unblock_change_the_list_from_what_it_is(any_store):
    blocked = await any_store.change_blocked(GUILD, block={51})
    assert blocked.blocked == {42, 51}  # the default's 🔫 (42) stays blocked
    assert await any_store.get_guild(GUILD) == blocked
    assert (await any_store.change_blocked(GUILD, unblock={42, 7})).blocked == {51}
    assert (await any_store.change_blocked(GUILD, block={1, 2}, unblock={51})).blocked == {1, 2}
    assert (await any_store.change_blocked(GUILD, unblock={1, 2})).blocked == frozenset()  # chosen: none
    assert (await any_store.get_guild(OTHER_GUILD)).blocked == DEFAULTS.blocked


@pytest.mark.parametrize("change", [{"block": {64}}, {"unblock": {-1}}, {"block": {True}}])
async def test_bad_emoji_classes_change_nothing(any_store, change):
    before = await any_store.change_blocked(GUILD, block={3})
    with pytest.raises(InvalidSetting, match="blocked: must be a set of emoji class indices"):
        await any_store.change_blocked(GUILD, **change)
    assert await any_store.get_guild(GUILD) == before


async def test_an_update_returns_the_settings_it_left(any_store):
    await any_store.set_channel_enabled(GUILD, CHANNEL, True)
    changed = await any_store.update_guild(GUILD, top_k=2, threshold=-0.0)
    assert changed == await any_store.get_guild(GUILD)
    assert (changed.top_k, changed.enabled_channels) == (2, {CHANNEL})
    assert str(changed.threshold) == "0.0"  # -0.0 is stored as 0


async def test_update_sets_values_and_none_resets_to_default(any_store):
    changed = await any_store.update_guild(GUILD, top_k=5, threshold=0.25, mod_channel_id=CHANNEL)
    assert (changed.top_k, changed.threshold, changed.mod_channel_id) == (5, 0.25, CHANNEL)
    assert changed.cooldown_s == DEFAULTS.cooldown_s
    assert await any_store.get_guild(GUILD) == changed
    reset = await any_store.update_guild(GUILD, top_k=None, mod_channel_id=None)
    assert (reset.top_k, reset.threshold, reset.mod_channel_id) == (3, 0.25, None)
    assert (await any_store.get_guild(OTHER_GUILD)).top_k == 3


async def test_unset_values_follow_changed_defaults(url):
    first = await open_store(url, DEFAULTS)
    await first.update_guild(GUILD, threshold=0.3)
    await first.close()
    moved = GuildDefaults(
        top_k=4,
        threshold=0.9,
        cooldown_s=1.0,
        mod_threshold=0.7,
        min_known=0.2,
        blocked=frozenset({51}),
        distress=0.9,
        chance=50,
    )
    second = await open_store(url, moved)
    try:
        settings = await second.get_guild(GUILD)
        assert (settings.top_k, settings.threshold, settings.cooldown_s, settings.mod_threshold) == (4, 0.3, 1.0, 0.7)
        assert (settings.min_known, settings.blocked, settings.distress, settings.chance) == (0.2, {51}, 0.9, 50)
    finally:
        await second.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"top_k": 0}, "top_k: must be an integer from 1 to 10, got 0"),
        ({"top_k": 2.5}, "top_k: must be an integer"),
        ({"threshold": 1.5}, "threshold: must be a number from 0 to 1"),
        ({"mod_threshold": -1}, "mod_threshold: must be a number from 0 to 1"),
        ({"mod_threshold": "high"}, "mod_threshold: must be a number"),
        ({"mod_channel_id": -5}, "mod_channel_id must be a Discord id"),
        ({"min_known": 1.5}, "min_known: must be a number from 0 to 1"),
        ({"distress": -0.1}, "distress: must be a number from 0 to 1"),
        ({"chance": 101}, "chance: must be an integer from 0 to 100"),
        ({"chance": 2.5}, "chance: must be an integer"),
        ({"blocked": {64}}, "blocked: must be a set of emoji class indices from 0 to 63"),
        ({"blocked": "🔫"}, "blocked: must be a set of emoji class indices"),
        ({"blocked": {True}}, "blocked: must be a set of emoji class indices"),
        ({"colour": "red"}, "unknown setting colour"),
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(any_store, changes, message):
    before = await any_store.update_guild(GUILD, top_k=7, threshold=0.2)
    with pytest.raises(InvalidSetting, match=message):
        await any_store.update_guild(GUILD, cooldown_s=5.0, **changes)
    assert await any_store.get_guild(GUILD) == before


@pytest.mark.parametrize("bad_id", [0, -1, 1 << 63, "123", True])
async def test_bad_ids_are_refused(any_store, bad_id):
    with pytest.raises(InvalidSetting, match="Discord id"):
        await any_store.get_guild(bad_id)
    with pytest.raises(InvalidSetting, match="channel_id"):
        await any_store.set_channel_enabled(GUILD, bad_id, True)
    with pytest.raises(InvalidSetting, match="user_id"):
        await any_store.set_opted_out(bad_id, True)


async def test_channels_are_enabled_per_guild_and_idempotently(any_store):
    await any_store.set_channel_enabled(GUILD, CHANNEL, True)
    await any_store.set_channel_enabled(GUILD, CHANNEL, True)
    await any_store.set_channel_enabled(GUILD, OTHER_CHANNEL, True)
    await any_store.set_channel_enabled(OTHER_GUILD, OTHER_CHANNEL, True)
    assert (await any_store.get_guild(GUILD)).enabled_channels == {CHANNEL, OTHER_CHANNEL}
    await any_store.set_channel_enabled(GUILD, OTHER_CHANNEL, False)
    await any_store.set_channel_enabled(GUILD, OTHER_CHANNEL, False)
    assert (await any_store.get_guild(GUILD)).enabled_channels == {CHANNEL}
    assert (await any_store.get_guild(OTHER_GUILD)).enabled_channels == {OTHER_CHANNEL}


async def test_user_opt_out_toggles(any_store):
    assert not await any_store.is_opted_out(USER)
    await any_store.set_opted_out(USER, True)
    await any_store.set_opted_out(USER, True)
    assert await any_store.is_opted_out(USER)
    assert not await any_store.is_opted_out(USER + 1)
    await any_store.set_opted_out(USER, False)
    assert not await any_store.is_opted_out(USER)


async def test_settings_survive_a_restart(url):
    first = await open_store(url, DEFAULTS)
    await first.update_guild(GUILD, top_k=6, cooldown_s=9.5, mod_channel_id=CHANNEL, mod_threshold=0.8)
    await first.set_channel_enabled(GUILD, CHANNEL, True)
    await first.set_opted_out(USER, True)
    before = await first.get_guild(GUILD)
    await first.close()
    second = await open_store(url, DEFAULTS)
    try:
        assert await second.get_guild(GUILD) == before
        assert await second.is_opted_out(USER)
    finally:
        await second.close()


async def test_migrates_an_older_schema_keeping_its_data(url):
    # A database as a whymoji with schema version 1 left it (written the way that version did).
    await (await open_store(url, DEFAULTS, schema_version=1)).close()
    await run_sql(url, f"INSERT INTO guild_settings (guild_id, top_k) VALUES ({GUILD}, 8)")
    await run_sql(url, f"INSERT INTO enabled_channels (guild_id, channel_id) VALUES ({GUILD}, {CHANNEL})")
    assert await run_sql(url, "SELECT version FROM schema_version ORDER BY version") == [(1,)]

    new = await open_store(url, DEFAULTS)
    try:
        settings = await new.update_guild(GUILD, mod_channel_id=OTHER_CHANNEL)
        assert (settings.top_k, settings.enabled_channels, settings.mod_channel_id) == (8, {CHANNEL}, OTHER_CHANNEL)
        await new.set_opted_out(USER, True)
        assert await new.is_opted_out(USER)
    finally:
        await new.close()
    versions = await run_sql(url, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(version,) for version in range(1, LATEST_VERSION + 1)]


async def test_migrates_a_version_2_schema_to_the_reaction_rules(url):
    # Version 2 had moderation settings but no reaction rules; a server's choices survive and
    # the new rules start at the defaults, then can be chosen.
    await (await open_store(url, DEFAULTS, schema_version=2)).close()
    await run_sql(url, f"INSERT INTO guild_settings (guild_id, top_k, mod_threshold) VALUES ({GUILD}, 2, 0.9)")
    new = await open_store(url, DEFAULTS)
    try:
        settings = await new.get_guild(GUILD)
        assert (settings.top_k, settings.mod_threshold) == (2, 0.9)
        assert (settings.min_known, settings.blocked, settings.distress, settings.chance) == (0.5, {42}, 0.5, 100)
        assert (await new.update_guild(GUILD, blocked={51}, chance=10)).blocked == {51}
    finally:
        await new.close()
    assert await run_sql(url, f"SELECT blocked, chance FROM guild_settings WHERE guild_id = {GUILD}") == [("51", 10)]


async def test_reopening_is_idempotent(url):
    for _ in range(3):
        await (await open_store(url, DEFAULTS)).close()
    assert await run_sql(url, "SELECT COUNT(*) FROM schema_version") == [(LATEST_VERSION,)]


async def test_a_newer_schema_is_refused(url):
    await (await open_store(url, DEFAULTS)).close()
    await run_sql(url, "INSERT INTO schema_version (version, description) VALUES (999, 'future')")
    with pytest.raises(StoreError, match="schema version 999, newer"):
        await open_store(url, DEFAULTS)


async def test_no_column_can_hold_message_text(store, url):
    if url.startswith("sqlite:"):
        tables = [row[0] for row in await run_sql(url, "SELECT name FROM sqlite_master WHERE type='table'")]
        columns = {(table, row[1]) for table in tables for row in await run_sql(url, f"PRAGMA table_info({table})")}
    else:
        columns = set(
            await run_sql(
                url,
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()",
            )
        )
    # Every column is an id, a number or the migration log; a new column must be added here
    # consciously, and must never hold what people wrote.
    assert columns == {
        ("schema_version", "version"),
        ("schema_version", "description"),
        ("guild_settings", "guild_id"),
        ("guild_settings", "top_k"),
        ("guild_settings", "threshold"),
        ("guild_settings", "cooldown_s"),
        ("guild_settings", "mod_channel_id"),
        ("guild_settings", "mod_threshold"),
        ("guild_settings", "min_known"),
        ("guild_settings", "blocked"),  # text, but only emoji class numbers ("42,51")
        ("guild_settings", "distress"),
        ("guild_settings", "chance"),
        ("enabled_channels", "guild_id"),
        ("enabled_channels", "channel_id"),
        ("opted_out_users", "user_id"),
    }


async def test_two_stores_on_one_database_see_each_others_writes(url):
    first, second = await open_store(url, DEFAULTS), await open_store(url, DEFAULTS)
    try:
        assert (await second.get_guild(GUILD)).top_k == 3  # read before the write
        await first.update_guild(GUILD, top_k=9)
        await first.set_channel_enabled(GUILD, CHANNEL, True)
        await first.set_opted_out(USER, True)
        seen = await second.get_guild(GUILD)
        assert (seen.top_k, seen.enabled_channels) == (9, {CHANNEL})
        assert await second.is_opted_out(USER)
        await second.update_guild(GUILD, top_k=None)
        assert (await first.get_guild(GUILD)).top_k == 3
    finally:
        await first.close()
        await second.close()


async def test_concurrent_opens_migrate_once(url):
    stores = await asyncio.gather(*(open_store(url, DEFAULTS) for _ in range(4)))
    try:
        assert await run_sql(url, "SELECT COUNT(*) FROM schema_version") == [(LATEST_VERSION,)]
    finally:
        await asyncio.gather(*(opened.close() for opened in stores))


async def test_concurrent_writes_from_two_stores_all_land(url):
    first, second = await open_store(url, DEFAULTS), await open_store(url, DEFAULTS)
    channels = list(range(1000, 1040))
    users = list(range(5000, 5040))
    try:
        writes = [
            (first if index % 2 else second).set_channel_enabled(GUILD, channel, True)
            for index, channel in enumerate(channels)
        ]
        writes += [(second if index % 2 else first).set_opted_out(user, True) for index, user in enumerate(users)]
        writes += [
            (first, second)[index % 2].update_guild(guild, top_k=1 + guild % 10)
            for index, guild in enumerate(range(10, 30))
        ]
        await asyncio.gather(*writes)
        assert (await first.get_guild(GUILD)).enabled_channels == set(channels)
        assert all(await asyncio.gather(*(second.is_opted_out(user) for user in users)))
        for guild in range(10, 30):
            assert (await second.get_guild(guild)).top_k == 1 + guild % 10
    finally:
        await first.close()
        await second.close()


async def test_concurrent_block_changes_from_two_stores_all_land(url):
    """Managers of one server on two processes block and unblock at once, round after round:
    no change is lost, and each answer includes its own change."""
    first, second = await open_store(url, DEFAULTS), await open_store(url, DEFAULTS)
    try:
        for round_ in range(8):
            await first.update_guild(GUILD, blocked={60, 61, 62})
            emojis = range(round_ * 6, round_ * 6 + 6)
            changes = [((first, second)[index % 2], {"block": {emoji}}) for index, emoji in enumerate(emojis)]
            changes += [(second, {"unblock": {60}}), (first, {"unblock": {61}})]
            answers = await asyncio.gather(*(store.change_blocked(GUILD, **change) for store, change in changes))
            assert (await second.get_guild(GUILD)).blocked == {*emojis, 62}
            for (_, change), answer in zip(changes, answers, strict=True):
                assert change.get("block", set()) <= answer.blocked
                assert not change.get("unblock", set()) & answer.blocked
    finally:
        await first.close()
        await second.close()


# --- opening: URLs and failures (backend-independent) -----------------------------------------


async def test_relative_sqlite_path_creates_its_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///data/deep/whymoji.sqlite3", DEFAULTS)
    await store.update_guild(GUILD, top_k=2)
    await store.close()
    assert (tmp_path / "data" / "deep" / "whymoji.sqlite3").is_file()


async def test_in_memory_sqlite_works():
    store = await open_store("sqlite:///:memory:", DEFAULTS)
    try:
        assert (await store.update_guild(GUILD, top_k=4)).top_k == 4
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("bad_url", "message"),
    [
        ("mysql://user:hunter2@db/whymoji", "unsupported database URL"),
        ("sqlite://relative.db", "bad SQLite URL"),
        ("sqlite:///", "bad SQLite URL"),
    ],
)
async def test_bad_urls_are_clear_errors_without_password(bad_url, message):
    with pytest.raises(StoreError, match=message) as caught:
        await open_store(bad_url, DEFAULTS)
    assert "hunter2" not in str(caught.value)


async def test_sqlite_path_that_cannot_be_created_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open SQLite database"):
        await open_store(f"sqlite:///{tmp_path}/file/settings.sqlite3", DEFAULTS)


async def test_a_file_that_is_not_a_database_is_a_store_error_and_leaves_no_thread(tmp_path):
    import threading

    junk = tmp_path / "settings.sqlite3"
    junk.write_text("not a database, just text that is long enough to have a header page\n" * 20)
    before = set(threading.enumerate())
    with pytest.raises(StoreError, match="file is not a database"):
        await open_store(f"sqlite:///{junk}", DEFAULTS)
    new = set(threading.enumerate()) - before
    for thread in new:  # a closed connection's thread ends a moment after close() returns
        thread.join(timeout=10)
    left = [thread for thread in new if thread.is_alive()]
    assert left == [], "an open connection's thread would keep the process from exiting"


async def test_unreachable_postgres_is_a_store_error_without_password():
    port = free_port()  # nobody listens there
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as caught:
        await open_store(f"postgresql://bot:hunter2@127.0.0.1:{port}/whymoji", DEFAULTS)
    assert "hunter2" not in str(caught.value)
    assert "bot:***@127.0.0.1" in str(caught.value)


def test_guild_defaults_come_from_the_config():
    config = load_config(
        None,
        environ={
            "WHYMOJI_REACTIONS_TOP_K": "6",
            "WHYMOJI_MODERATION_THRESHOLD": "0.9",
            "WHYMOJI_REACTIONS_MIN_KNOWN": "0.7",
            "WHYMOJI_REACTIONS_BLOCKED": "🔫 💀",
            "WHYMOJI_REACTIONS_DISTRESS": "1",
            "WHYMOJI_REACTIONS_CHANCE": "30",
        },
    )
    defaults = GuildDefaults.from_config(config)
    assert defaults == GuildDefaults(
        top_k=6,
        threshold=0.1,
        cooldown_s=2.0,
        mod_threshold=0.9,
        min_known=0.7,
        blocked=frozenset({42, 51}),
        distress=1.0,
        chance=30,
    )


def test_guild_defaults_of_the_reaction_rules_are_the_configs():
    assert GuildDefaults(top_k=3, threshold=0.1, cooldown_s=2.0, mod_threshold=0.5) == GuildDefaults.from_config(
        load_config(None, environ={})
    )
