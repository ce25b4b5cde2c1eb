"""DurableStore keeps the entitlement catalog: journal entry, fold into the ``_catalog``
table, replay after a crash, untouched by clear."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from scim_desktop.core.repository import USER
from scim_desktop.store import DurableStore
from scim_desktop.store.journal import list_segments

DOC = {"resourceTypes": [], "userSchemaExtensions": [], "schemas": [], "note": "as given"}


def test_catalog_survives_a_crash_and_is_folded(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path)
        assert store.catalog_doc is None
        store.put_catalog(DOC)
        assert store.catalog_doc == DOC
        await store.commit()
        # crash: no close, the journal alone holds it

    asyncio.run(write())
    assert list_segments(path)
    store = DurableStore.open(path)  # replays and folds at start-up
    assert store.catalog_doc == DOC
    assert store.warnings == []
    store.close_sync()
    assert orjson.loads(path.read_bytes())["_catalog"] == {"1": DOC}


def test_clear_keeps_the_catalog_and_none_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "scim.json"

    async def write() -> None:
        store = DurableStore.open(path)
        store.put_catalog(DOC)
        store.put(USER, {"id": "u1", "userName": "u1", "_seq": store.next_seq()})
        await store.commit()
        await store.fold()
        store.clear()
        await store.commit()
        await store.close()

    asyncio.run(write())
    store = DurableStore.open(path)
    assert store.catalog_doc == DOC and store.count(USER) == 0

    async def remove() -> None:
        store.put_catalog(None)
        await store.commit()
        await store.close()

    asyncio.run(remove())
    assert "_catalog" not in orjson.loads(path.read_bytes())
    again = DurableStore.open(path)
    assert again.catalog_doc is None
    again.close_sync()
