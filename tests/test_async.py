"""The async client (issue 14, "Beyond pytidb: an async client") on every engine, and ``to_arrow`` /
``to_polars`` results.

The async surface is held to the sync one: the same calls on the same database, through a second,
synchronous client, return the same rows and raise the same error classes. Under load (200 searches
and inserts gathered through one client) every answer equals a numpy reference and the process holds
no more threads than the client's pool allows.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lookalike
from lookalike import (
    AsyncClient,
    ConfigurationError,
    EngineError,
    Field,
    FilterError,
    FullTextField,
    LookalikeError,
    MissingDependencyError,
    QueryResult,
    SchemaError,
    TableModel,
    TableNotFoundError,
    VectorError,
    VectorField,
    connect_async,
)
from lookalike.aio import AsyncSearch, AsyncTable
from tests.toy_embedder import DIMS, ToyEmbedder

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

WORDS = ["red", "blue", "green", "cat", "dog", "boots", "beach", "snow", "tree", "town"]


def make_model(toy: ToyEmbedder, name: str = "async_items") -> type[TableModel]:
    class Item(TableModel):
        __tablename__ = name
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = FullTextField(default=None)
        album: str = Field(default="a")
        vec: list[float] | None = toy.VectorField(source_field="caption", source_type="text")

    return Item


def rows_for(n: int, seed: int = 14) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(2, 5))).tolist()
        out.append({"caption": " ".join(words) + f" n{i}", "album": "ab"[i % 2]})
    return out


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def same_error(sync_call: Callable[[], Any], async_call: Callable[[], Awaitable[Any]]) -> type[BaseException]:
    """Both calls raise, and the same class; returns it."""
    with pytest.raises(LookalikeError) as sync_err:
        sync_call()
    with pytest.raises(LookalikeError) as async_err:
        run(async_call)
    assert type(async_err.value) is type(sync_err.value), (sync_err.value, async_err.value)
    return type(sync_err.value)


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", value) or ("error", the LookalikeError's class)."""
    try:
        return "ok", call()
    except LookalikeError as exc:
        return "error", type(exc)


async def outcome_async(call: Callable[[], Awaitable[Any]]) -> tuple[str, Any]:
    try:
        return "ok", await call()
    except LookalikeError as exc:
        return "error", type(exc)


# ---------------------------------------------------------------------- the surface, compared


def test_table_calls_return_what_sync_calls_return(
    client: lookalike.Client, engine_url: str, toy: ToyEmbedder
) -> None:
    Item = make_model(toy)
    client.create_table(schema=Item, if_exists="overwrite")
    sync_table = client.open_table("async_items", embed_fn=toy)  # opened as the async side opens it

    async def body() -> None:
        async with await connect_async(engine_url, max_workers=2) as aclient:
            assert "async_items" in await aclient.list_tables()
            assert await aclient.list_tables() == client.list_tables()
            assert await aclient.has_table("async_items") is True
            assert await aclient.has_table("nope") is False
            table = await aclient.open_table("async_items", embed_fn=toy)
            assert isinstance(table, AsyncTable) and table.name == "async_items"
            assert table.primary_key == "id" and table.columns() == sync_table.columns()
            assert table.vector_columns.keys() == ["vec"]

            inserted = await table.bulk_insert(rows_for(30))
            assert len(inserted) == 30 and not inserted.failed
            one = await table.insert({"caption": "red boots on snow", "album": "c"})
            assert one["id"] is not None and len(one["vec"]) == DIMS
            assert await table.rows() == sync_table.rows() == 31
            assert await table.count() == 31

            got = await table.get(one["id"])
            assert got.model_dump() == sync_table.get(one["id"]).model_dump()
            assert await table.get(10_000) is None

            q_async = await table.query({"album": "a"}, order_by={"id": "desc"}, limit=5, offset=1)
            q_sync = sync_table.query({"album": "a"}, order_by={"id": "desc"}, limit=5, offset=1)
            assert q_async.to_list() == q_sync.to_list() and len(q_async) == 5

            # rows out of searches: vector, full-text, hybrid, each with a filter and a limit
            vs = table.search("red cat").filter({"album": "a"}).limit(4)
            assert isinstance(vs, AsyncSearch)
            sync_vs = sync_table.search("red cat").filter({"album": "a"}).limit(4)
            assert await vs.to_list() == sync_vs.to_list()
            assert await vs.to_rows() == sync_vs.to_rows()
            assert (await vs.execute()).to_list() == sync_vs.to_list()
            assert np.allclose(await vs.query_vector(), sync_vs.query_vector())
            hits = await vs.to_pydantic()
            assert [(h.hit.id, h.distance) for h in hits] == [
                (h.hit.id, h.distance) for h in sync_vs.to_pydantic()
            ]
            assert (await vs.to_pandas()).equals(sync_vs.to_pandas())
            assert await vs.compiled_vector_query_sql() == sync_vs.compiled_vector_query_sql()

            by_vector = table.search(vector=[0.25] * DIMS).select("caption", "vec").limit(3)
            assert (
                await by_vector.to_list()
                == sync_table.search(vector=[0.25] * DIMS).select("caption", "vec").limit(3).to_list()
            )

            ft = table.search("boots", search_type="fulltext").limit(5)
            assert await ft.to_list() == sync_table.search("boots", search_type="fulltext").limit(5).to_list()
            hy = table.search("red boots", search_type="hybrid").filter({"album": "b"}).limit(5)
            sync_hy = sync_table.search("red boots", search_type="hybrid").filter({"album": "b"}).limit(5)
            assert await hy.to_list() == sync_hy.to_list()
            with pytest.raises(ConfigurationError, match="vector search"):
                await ft.query_vector()

            # rows in: save, update, delete, replace_rows, truncate, seen by the sync client
            saved = await table.save({"id": one["id"], "caption": "blue tree", "album": "c"})
            assert saved.caption == "blue tree"
            assert sync_table.get(one["id"]).caption == "blue tree"
            assert await table.update({"album": "z"}, {"album": "c"}) == 1
            assert sync_table.query({"album": "z"}).to_list()[0]["id"] == one["id"]
            replaced = await table.replace_rows([{"caption": "green town", "album": "r"}], [one["id"]])
            assert len(replaced) == 1 and not sync_table.query({"album": "z"}).to_list()
            assert sync_table.get(replaced[0]["id"]).caption == "green town"
            assert await table.delete({"album": "r"}) == 1
            assert sync_table.rows() == 30
            assert await table.has_fts_index("caption") == sync_table.has_fts_index("caption") is True
            await table.create_fts_index("caption")  # there already: kept
            assert await table.source_info() == sync_table.source_info()
            twins = [{"caption": "white snow twin", "album": "t"}] * 2
            await table.bulk_insert(twins)
            found = await table.find_duplicates(threshold=0.0)
            assert repr(found) == repr(sync_table.find_duplicates(threshold=0.0)) and found
            assert await table.delete({"album": "t"}) == 2
            # an index: built, or refused for a missing extra (the embedded engine without faiss),
            # the same way in both
            async_index = await outcome_async(lambda: table.create_vector_index(metric="l2"))
            assert async_index == outcome(lambda: sync_table.create_vector_index(metric="l2"))
            assert await table.has_vector_index() == sync_table.has_vector_index()
            await table.truncate()
            assert sync_table.rows() == 0

    run(body)


def test_client_calls_return_what_sync_calls_return(
    client: lookalike.Client, engine_url: str, toy: ToyEmbedder
) -> None:
    Item = make_model(toy, "async_client_items")

    async def body() -> None:
        aclient = await connect_async(engine_url)
        try:
            table = await aclient.create_table(schema=Item, if_exists="overwrite")
            assert isinstance(table, AsyncTable)
            assert client.has_table("async_client_items")
            await table.bulk_insert(rows_for(6))
            sql = "SELECT id, album FROM async_client_items ORDER BY id"
            assert (await aclient.query(sql)).to_list() == client.query(sql).to_list()
            result = await aclient.execute(
                "UPDATE async_client_items SET album = :a WHERE id <= :n", {"a": "q", "n": 2}
            )
            assert result.success and result.rowcount == 2
            assert client.query("SELECT COUNT(*) FROM async_client_items WHERE album = 'q'").scalar() == 2
            failed = await aclient.execute("SELECT * FROM no_such_table", raise_error=False)
            assert failed.success is False and failed.message
            assert await aclient.current_database() == client.current_database()
            assert await aclient.list_databases() == client.list_databases()
            name = client.current_database()
            assert name is not None and await aclient.has_database(name) is True
            assert await aclient.open_table("nope", if_missing="none") is None

            # run_sync: work that must stay on one thread, such as a session
            def in_session(c: lookalike.Client) -> int:
                with c.session():
                    t = c.open_table("async_client_items", embed_fn=toy)
                    t.insert({"caption": "snow", "album": "s"})
                    return t.rows()

            assert await aclient.run_sync(in_session) == 7
            await aclient.drop_table("async_client_items")
            assert not client.has_table("async_client_items")
        finally:
            await aclient.close()

    run(body)


def test_databases_through_the_async_client(client: lookalike.Client, engine_url: str) -> None:
    other = f"lk_async_{uuid.uuid4().hex[:8]}"

    async def body() -> None:
        async with await connect_async(engine_url) as aclient:
            home = await aclient.current_database()
            assert home == client.current_database() and home is not None
            await aclient.create_database(other)
            assert await aclient.has_database(other) and client.has_database(other)
            assert other in await aclient.list_databases()
            with pytest.raises(SchemaError):
                await aclient.create_database(other)
            await aclient.use_database(other)
            assert await aclient.current_database() == other
            with pytest.raises(ConfigurationError, match="uses"):
                await aclient.drop_database(other)
            await aclient.use_database(home)
            await aclient.drop_database(other)
            assert not await aclient.has_database(other) and not client.has_database(other)

    run(body)


def test_errors_are_the_sync_ones(client: lookalike.Client, engine_url: str, toy: ToyEmbedder) -> None:
    Item = make_model(toy, "async_errors")
    sync_table = client.create_table(schema=Item, if_exists="overwrite")
    sync_table.insert({"caption": "red", "album": "a"})
    aclient = run(lambda: connect_async(engine_url))
    table = run(lambda: aclient.open_table("async_errors", embed_fn=toy))
    try:
        assert same_error(lambda: client.open_table("missing"), lambda: aclient.open_table("missing")) is (
            TableNotFoundError
        )
        assert (
            same_error(lambda: client.create_table(schema=Item), lambda: aclient.create_table(schema=Item))
            is SchemaError
        )
        assert (
            same_error(
                lambda: client.drop_table("async_errors", if_not_exists="maybe"),  # type: ignore[arg-type]
                lambda: aclient.drop_table("async_errors", if_not_exists="maybe"),  # type: ignore[arg-type]
            )
            is ConfigurationError
        )
        assert same_error(
            lambda: client.query("SELEC nonsense"), lambda: aclient.query("SELEC nonsense")
        ) is (EngineError)
        assert (
            same_error(
                lambda: sync_table.insert({"caption": "x", "vec": [1.0, 2.0]}),
                lambda: table.insert({"caption": "x", "vec": [1.0, 2.0]}),
            )
            is VectorError
        )
        assert (
            same_error(
                lambda: sync_table.search(vector=[1.0] * 3).to_list(),
                lambda: table.search(vector=[1.0] * 3).to_list(),
            )
            is VectorError
        )
        assert (
            same_error(
                lambda: sync_table.query({"nope": 1}),
                lambda: table.query({"nope": 1}),
            )
            is FilterError
        )
        # building a search checks its arguments at once, in both
        with pytest.raises(ConfigurationError):
            sync_table.search("red").limit(0)
        with pytest.raises(ConfigurationError):
            table.search("red").limit(0)
        with pytest.raises(FilterError):
            table.search("red").filter({"nope": 1})
        with pytest.raises(SchemaError):
            table.search("red").select("nope")
    finally:
        run(aclient.close)


# ---------------------------------------------------------------------- load, threads, closing


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Vec(TableModel):
    __tablename__ = "async_load"
    id: int | None = Field(default=None, primary_key=True)
    album: str = Field(default="base")
    vec: list[float] | None = VectorField(dimensions=DIMS, distance_metric="cosine", index=False)


def test_concurrent_searches_and_inserts_are_correct_with_bounded_threads(
    client: lookalike.Client, engine_url: str
) -> None:
    """200 calls gathered through one client (3 workers): 150 filtered vector searches, each equal to a
    numpy reference, and 50 inserts, each readable afterwards; threads never exceed baseline + 3.

    Vector-only searches start no helper thread (no query to embed, so no prefetch; no full-text half),
    so no allowance is needed beyond the pool.
    """
    rng = np.random.default_rng(200)
    base = _unit(rng, 120)
    table = client.create_table(schema=Vec, if_exists="overwrite")
    ids = [r["id"] for r in table.bulk_insert([{"vec": v.tolist(), "album": "base"} for v in base])]
    queries = _unit(rng, 150)
    extra = _unit(rng, 50)

    def reference(q: np.ndarray) -> list[int]:
        d = 1.0 - (base.astype(np.float64) @ q.astype(np.float64))
        return [ids[i] for i in np.argsort(d, kind="stable")[:5]]

    baseline = threading.active_count()
    peak = baseline

    async def body() -> tuple[list[Any], int]:
        nonlocal peak
        async with await connect_async(engine_url, max_workers=3) as aclient:
            atable = await aclient.open_table("async_load")
            assert atable is not None
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, threading.active_count())
                    await asyncio.sleep(0.001)

            sampler = asyncio.create_task(sample())
            calls: list[Awaitable[Any]] = []
            for i in range(200):
                if i % 4 == 3:
                    calls.append(atable.insert({"vec": extra[i // 4].tolist(), "album": "new"}))
                else:
                    q = queries[i - i // 4]
                    calls.append(
                        atable.search(vector=q.tolist()).filter({"album": "base"}).limit(5).to_list()
                    )
            results = await asyncio.gather(*calls)
            done.set()
            await sampler
            return results, await atable.rows()

    results, count = run(body)
    assert baseline < peak <= baseline + 3, (baseline, peak)  # the pool ran, and no wider
    assert count == 170
    searches = [r for i, r in enumerate(results) if i % 4 != 3]
    inserts = [r for i, r in enumerate(results) if i % 4 == 3]
    assert len(searches) == 150 and len(inserts) == 50
    for q, hits in zip(queries, searches):
        assert [h["id"] for h in hits] == reference(q)
    for row, v in zip(inserts, extra):
        stored = table.get(row["id"])
        assert stored is not None and np.allclose(stored.vec, v, atol=1e-6)
    # the sync client agrees with what the load saw
    assert (
        searches[0] == table.search(vector=queries[0].tolist()).filter({"album": "base"}).limit(5).to_list()
    )


def test_postgres_vector_searches_run_on_the_async_driver(client: lookalike.Client, engine_url: str) -> None:
    """With async_driver=True a PostgreSQL vector search's SQL goes through psycopg's async driver: 60 searches gathered
    through ONE worker all finish, each equal to the sync answer, over the async engine's own pool;
    closing disposes of the async engine."""
    if client.engine.name != "postgresql":
        pytest.skip("psycopg's async driver is PostgreSQL's")
    rng = np.random.default_rng(31)
    base = _unit(rng, 80)
    table = client.create_table(schema=Vec, if_exists="overwrite")
    table.bulk_insert([{"vec": v.tolist(), "album": "ab"[i % 2]} for i, v in enumerate(base)])
    queries = _unit(rng, 60)
    want = [table.search(vector=q.tolist()).filter({"album": "a"}).limit(4).to_list() for q in queries]

    async def body() -> tuple[list[Any], int, Any]:
        aclient = await connect_async(engine_url, max_workers=1, async_driver=True)
        atable = await aclient.open_table("async_load")
        got = await asyncio.gather(
            *(atable.search(vector=q.tolist()).filter({"album": "a"}).limit(4).to_list() for q in queries)
        )
        engine: Any = aclient.sync_client.engine
        made = engine.async_engine()
        pooled = made.sync_engine.pool.checkedin()
        await aclient.close()
        return got, pooled, engine.take_async_engine()

    got, pooled, left = run(body)
    assert got == want
    assert pooled >= 1  # the searches' connections came from the async driver's pool
    assert left is None  # close() took and disposed of the async engine


def test_hybrid_load_holds_at_most_one_helper_thread_per_worker(
    client: lookalike.Client, engine_url: str, toy: ToyEmbedder
) -> None:
    """A hybrid search runs its full-text half in one short-lived helper thread, so the bound under a
    hybrid load is baseline + 2 × workers (that helper is the allowance)."""
    table = client.create_table(schema=make_model(toy, "async_hybrid"), if_exists="overwrite")
    table.bulk_insert(rows_for(40))
    expected = table.search("red boots", search_type="hybrid").limit(5).to_list()
    baseline = threading.active_count()
    peak = baseline

    async def body() -> list[Any]:
        nonlocal peak
        async with await connect_async(engine_url, max_workers=2) as aclient:
            atable = await aclient.open_table("async_hybrid", embed_fn=toy)
            assert atable is not None

            async def one() -> Any:
                nonlocal peak
                out = await atable.search("red boots", search_type="hybrid").limit(5).to_list()
                peak = max(peak, threading.active_count())
                return out

            return await asyncio.gather(*(one() for _ in range(20)))

    results = run(body)
    assert all(r == expected for r in results)
    assert baseline < peak <= baseline + 2 * 2, (baseline, peak)


def test_close_waits_for_calls_in_flight_and_later_calls_raise(
    client: lookalike.Client, engine_url: str, toy: ToyEmbedder
) -> None:
    table = client.create_table(schema=make_model(toy, "async_close"), if_exists="overwrite")
    table.bulk_insert(rows_for(10))

    async def body() -> None:
        aclient = await connect_async(engine_url, max_workers=2)
        atable = await aclient.open_table("async_close", embed_fn=toy)
        assert atable is not None
        search = atable.search("red").limit(3)
        in_flight = [asyncio.ensure_future(search.to_list()) for _ in range(6)]
        finished: list[str] = []

        def slow(c: lookalike.Client) -> None:
            time.sleep(0.3)
            finished.append("slow")

        cancelled = asyncio.ensure_future(aclient.run_sync(slow))
        await asyncio.sleep(0.05)  # every call is in the pool, the slow one running
        cancelled.cancel()  # the task gives up, the worker's call runs on
        await aclient.close()
        assert finished == ["slow"]  # close waited for it before closing the database
        assert aclient.closed and aclient.sync_client.closed
        assert all(len(f.result()) == 3 for f in in_flight)  # finished before the database closed
        await aclient.close()  # twice: a no-op
        for later in (
            aclient.list_tables,
            lambda: aclient.open_table("async_close"),
            atable.rows,
            lambda: atable.insert({"caption": "x"}),
            search.to_list,
            lambda: aclient.run_sync(lambda c: c.list_tables()),
        ):
            with pytest.raises(ConfigurationError, match="closed"):
                await later()

        idle = await connect_async(engine_url)
        async with idle:
            assert await idle.has_table("async_close")
        assert idle.closed
        with pytest.raises(ConfigurationError, match="closed"):
            await idle.has_table("async_close")

    before = threading.active_count()
    run(body)
    # the pool's workers exit once closed (shutdown without waiting: give them a moment)
    for _ in range(200):
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.01)
    assert threading.active_count() <= before


def test_calls_see_the_callers_context_variables(tmp_path: Any) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")

    async def body() -> list[str]:
        async with await connect_async(tmp_path / "ctx.db", max_workers=2) as aclient:

            async def one(name: str) -> str:
                request_id.set(name)  # each task has its own context
                return await aclient.run_sync(lambda c: request_id.get())

            return await asyncio.gather(*(one(f"r{i}") for i in range(8)))

    assert run(body) == [f"r{i}" for i in range(8)]


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "4", None])
def test_max_workers_must_be_a_positive_integer(bad: Any, tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_workers"):
        run(lambda: connect_async(tmp_path / "w.db", max_workers=bad))
    sync = lookalike.connect(tmp_path / "w.db")
    with pytest.raises(ConfigurationError, match="max_workers"):
        AsyncClient(sync, max_workers=bad)
    sync.close()


def test_async_client_wraps_only_a_client_and_memory_gets_one_worker(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="wraps a lookalike Client"):
        AsyncClient("photos.db")  # type: ignore[arg-type]
    memory = AsyncClient(lookalike.connect(":memory:"), max_workers=8)
    assert memory.max_workers == 1  # one shared connection
    run(memory.close)
    on_file = AsyncClient(lookalike.connect(tmp_path / "f.db"), max_workers=8)
    assert on_file.max_workers == 8
    run(on_file.close)


def test_a_failed_connect_raises_the_sync_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError):
        lookalike.connect("nosuchscheme://x")
    with pytest.raises(ConfigurationError):
        run(lambda: connect_async("nosuchscheme://x"))


# ---------------------------------------------------------------------- to_arrow / to_polars


def _as_f32(values: list[float] | None) -> list[float] | None:
    return None if values is None else np.asarray(values, dtype=np.float32).tolist()


def test_to_arrow_and_polars_of_table_rows_and_searches(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = client.create_table(schema=make_model(toy, "arrow_items"), if_exists="overwrite")
    table.bulk_insert(rows_for(12))
    table.insert({"caption": None, "album": "n"})  # no source: a NULL vector

    rows = table.query(order_by="id")
    listed = rows.to_list()
    arrow = rows.to_arrow()
    assert arrow.schema.field("vec").type == pa.list_(pa.float32(), DIMS)
    assert arrow.schema.field("id").type == pa.int64() and arrow.schema.field("caption").type == pa.string()
    assert arrow.column_names == list(listed[0])
    assert arrow.to_pylist() == [{**r, "vec": _as_f32(r["vec"])} for r in listed]
    frame = rows.to_polars()
    assert frame.schema["vec"] == pl.Array(pl.Float32, DIMS)
    assert frame.to_dicts() == [{**r, "vec": _as_f32(r["vec"])} for r in listed]

    search = table.search("red cat").select("caption", "vec").limit(4)
    hits = search.to_list()
    s_arrow = search.to_arrow()
    assert s_arrow.schema.field("_distance").type == pa.float64()
    assert s_arrow.schema.field("_score").type == pa.float64()
    assert s_arrow.schema.field("vec").type == pa.list_(pa.float32(), DIMS)
    assert s_arrow.to_pylist() == [{**h, "vec": _as_f32(h["vec"])} for h in hits]
    s_frame = search.to_polars()
    assert s_frame.to_dicts() == [{**h, "vec": _as_f32(h["vec"])} for h in hits]
    # searches leave vectors out unless selected
    plain = table.search("red cat").limit(3)
    assert "vec" not in plain.to_arrow().column_names
    assert plain.to_arrow().to_pylist() == plain.to_list()
    # full-text hits: _score, no _distance
    ft = table.search("boots", search_type="fulltext").limit(3)
    assert ft.to_arrow().to_pylist() == ft.to_list() and "_distance" not in ft.to_polars().columns
    # hybrid hits: _distance / _match_score are None where one side did not find the row
    hy = table.search("red boots", search_type="hybrid").limit(8)
    assert hy.to_arrow().to_pylist() == hy.to_list() and hy.to_polars().to_dicts() == hy.to_list()
    # a search without hits: an empty table
    none = table.search("red").filter({"album": "nowhere"})
    assert none.to_arrow().num_rows == 0 and none.to_polars().height == 0


def test_async_to_arrow_and_polars_equal_the_sync_ones(
    client: lookalike.Client, engine_url: str, toy: ToyEmbedder
) -> None:
    table = client.create_table(schema=make_model(toy, "arrow_async"), if_exists="overwrite")
    table.bulk_insert(rows_for(10))
    sync_search = table.search("blue").select("caption", "vec").limit(5)

    async def body() -> tuple[Any, Any]:
        async with await connect_async(engine_url) as aclient:
            atable = await aclient.open_table("arrow_async", embed_fn=toy)
            assert atable is not None
            search = atable.search("blue").select("caption", "vec").limit(5)
            return await search.to_arrow(), await search.to_polars()

    arrow, frame = run(body)
    assert arrow.equals(sync_search.to_arrow())
    assert frame.equals(sync_search.to_polars())


def test_raw_sql_results_keep_lists_and_check_given_vector_sizes() -> None:
    rows = QueryResult([{"id": 1, "v": [1.0, 2.0]}, {"id": 2, "v": None}])
    assert rows.to_arrow().schema.field("v").type == pa.list_(pa.float64())  # no model: not a vector
    typed = rows.to_arrow(vector_dimensions={"v": 2})
    assert typed.schema.field("v").type == pa.list_(pa.float32(), 2)
    assert rows.to_polars(vector_dimensions={"v": 2}).schema["v"] == pl.Array(pl.Float32, 2)
    with pytest.raises(SchemaError, match=r"row 0: column 'v' holds a vector of 2 values, expected 3"):
        rows.to_arrow(vector_dimensions={"v": 3})
    with pytest.raises(SchemaError, match="row 0"):
        rows.to_polars(vector_dimensions={"v": 3})
    assert QueryResult([]).to_arrow().num_rows == 0


@pytest.mark.parametrize(
    ("module", "call", "extra"), [("pyarrow", "to_arrow", "arrow"), ("polars", "to_polars", "polars")]
)
def test_missing_arrow_or_polars_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, call: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(MissingDependencyError, match=rf"lookalike\[{extra}\]") as err:
        getattr(QueryResult([{"a": 1}]), call)()
    assert err.value.extra == extra


vectors_st = st.one_of(
    st.none(),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=3, max_size=3),
)
row_st = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**62), 2**62),
        "name": st.one_of(st.none(), st.text(max_size=8)),
        "vec": vectors_st,
        "_distance": st.floats(0, 2, allow_nan=False),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row_st, min_size=1, max_size=12))
def test_to_arrow_and_polars_round_trip_any_rows(rows: list[dict[str, Any]]) -> None:
    """Whatever the rows, Arrow and polars give back to_list()'s values (vectors as float32)."""
    result = QueryResult(rows)
    expected = [{**r, "vec": _as_f32(r["vec"])} for r in result.to_list()]
    arrow = result.to_arrow(vector_dimensions={"vec": 3})
    assert arrow.to_pylist() == expected
    assert arrow.schema.field("vec").type == pa.list_(pa.float32(), 3)
    assert result.to_polars(vector_dimensions={"vec": 3}).to_dicts() == expected


def test_async_driver_without_greenlet_names_the_extra(
    client: lookalike.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    if client.engine.name != "postgresql":
        pytest.skip("psycopg's async driver is PostgreSQL's")
    engine: Any = client.engine
    assert engine.take_async_engine() is None  # nothing made yet on this client
    monkeypatch.setitem(sys.modules, "greenlet", None)  # as if it were not installed
    with pytest.raises(lookalike.MissingDependencyError, match=r"lookalike\[postgres\].*greenlet"):
        engine.async_engine()
