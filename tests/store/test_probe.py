"""probe_store: what `check` (and `run`, before logging in) learn about the settings database,
without creating or migrating anything."""

from __future__ import annotations

import pytest

from bot.store import StoreError, open_store
from bot.store.probe import probe_store
from bot.store.schema import LATEST_VERSION
from tests.conftest import free_port
from tests.store.support import DEFAULTS, run_sql


async def test_a_missing_database_is_fine_and_is_not_created(tmp_path):
    target = tmp_path / "new" / "folder" / "settings.sqlite3"
    description = await probe_store(f"sqlite:///{target}")
    assert "does not exist yet" in description
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []


async def test_an_opened_database_reports_its_schema_and_is_not_migrated(url):
    store = await open_store(url, DEFAULTS, schema_version=1)
    await store.close()
    description = await probe_store(url)
    assert f"schema version 1; the bot migrates it to {LATEST_VERSION} on start" in description
    assert await run_sql(url, "SELECT MAX(version) FROM schema_version") == [(1,)]
    store = await open_store(url, DEFAULTS)
    await store.close()
    assert f"schema version {LATEST_VERSION}, up to date" in await probe_store(url)


async def test_an_empty_postgresql_database_or_sqlite_file_counts_as_version_0(url, tmp_path):
    if url.startswith("sqlite"):  # an empty file is an empty SQLite database
        (tmp_path / "nested" / "folder").mkdir(parents=True)
        (tmp_path / "nested" / "folder" / "settings.sqlite3").write_bytes(b"")
    assert f"schema version 0; the bot migrates it to {LATEST_VERSION} on start" in await probe_store(url)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "/proc/whymoji/settings.sqlite3",
            "cannot open SQLite database /proc/whymoji/settings.sqlite3: cannot create it in /proc",
        ),
        ("/tmp", "cannot open SQLite database /tmp: it is a folder"),
    ],
)
async def test_a_sqlite_path_the_bot_cannot_use_is_a_store_error(target, message):
    with pytest.raises(StoreError, match=message):
        await probe_store(f"sqlite:///{target}")


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path):
    junk = tmp_path / "settings.sqlite3"
    junk.write_text("not a database, just text that is long enough to have a header page\n" * 20)
    with pytest.raises(StoreError, match=f"SQLite database {junk}: file is not a database"):
        await probe_store(f"sqlite:///{junk}")
    assert junk.read_text().startswith("not a database")


async def test_a_database_from_a_newer_whymoji_is_a_store_error(tmp_path):
    path = tmp_path / "settings.sqlite3"
    store = await open_store(f"sqlite:///{path}", DEFAULTS)
    await store.close()
    await run_sql(f"sqlite:///{path}", f"INSERT INTO schema_version VALUES ({LATEST_VERSION + 1}, 'future')")
    with pytest.raises(StoreError, match="newer than this whymoji understands"):
        await probe_store(f"sqlite:///{path}")


async def test_an_unreachable_postgresql_is_a_store_error_without_the_password():
    with pytest.raises(StoreError) as error:
        await probe_store(f"postgresql://whymoji:hunter2@127.0.0.1:{free_port()}/whymoji")
    assert "cannot connect to PostgreSQL at postgresql://whymoji:***@127.0.0.1" in str(error.value)
    assert "hunter2" not in str(error.value)
