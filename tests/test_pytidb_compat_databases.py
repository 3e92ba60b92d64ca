"""pytidb's database calls: current/has/create/list/drop/use_database.

PostgreSQL (and TiDB, checked as the SQL it is sent) manage the server's databases; the embedded
engine keeps database NAME in the SQLite file NAME.db beside the current one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import lookalike
from lookalike import ConfigurationError, EngineError, Field, SchemaError, TableModel, VectorField
from lookalike.engines.tidb import TiDBEngine


def make_table(client: lookalike.Client, name: str = "db_items") -> lookalike.Table:
    class Item(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        label: str = Field(default="")
        vec: list[float] | None = VectorField(dimensions=3)

    return client.create_table(schema=Item, if_exists="overwrite")


def fresh_name(prefix: str = "lk_db") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------- every engine


def test_manage_and_switch_databases(engine_url: str) -> None:
    with lookalike.connect(engine_url) as client:
        home = client.current_database()
        assert home is not None and client.has_database(home) and home in client.list_databases()
        other = fresh_name()
        assert not client.has_database(other)
        client.create_database(other)
        with pytest.raises(SchemaError, match=f"database '{other}' already exists"):
            client.create_database(other)
        client.create_database(other, if_exists="skip")
        assert client.has_database(other) and other in client.list_databases()
        try:
            client.use_database(other)
            assert client.current_database() == other
            t = make_table(client, "db_in_other")
            t.insert({"label": "x", "vec": [1, 0, 0]})
            with pytest.raises(ConfigurationError, match="is the one this client uses"):
                client.drop_database(other)
            client.use_database(home)
            assert client.current_database() == home and not client.has_table("db_in_other")
            client.use_database(other)  # the data stayed in the other database
            assert client.open_table("db_in_other").rows() == 1
            client.use_database(home)
        finally:
            client.drop_database(other)
        assert not client.has_database(other) and other not in client.list_databases()
        client.drop_database(other)  # a missing database: a no-op, as in pytidb


def test_use_database_missing_and_ensure_db(engine_url: str) -> None:
    with lookalike.connect(engine_url) as client:
        home = client.current_database()
        name = fresh_name("lk_ensure")
        with pytest.raises(ValueError, match=f"Database '{name}' does not exist"):
            client.use_database(name)
        assert client.current_database() == home  # still usable after the refusal
        try:
            client.use_database(name, ensure_db=True)
            assert client.current_database() == name and client.has_database(name)
        finally:
            client.use_database(str(home))
            client.drop_database(name)


def test_bad_database_arguments(engine_url: str) -> None:
    with lookalike.connect(engine_url) as client:
        with pytest.raises(ConfigurationError, match="if_exists must be 'raise' or 'skip', got 'overwrite'"):
            client.create_database(fresh_name(), if_exists="overwrite")  # type: ignore[arg-type]
        for bad in ("", 42, None):
            with pytest.raises(ConfigurationError, match="database name must be a non-empty string"):
                client.create_database(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            client.has_database("x" * 80)
        with client.session():
            with pytest.raises(ConfigurationError, match="inside a session"):
                client.use_database(str(client.current_database()))


# ---------------------------------------------------------------------- the embedded engine: sibling files


def test_sqlite_databases_are_sibling_files(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database")  # a .db that isn't SQLite is no database
    with lookalike.connect(f"sqlite:///{tmp_path / 'main.db'}?vector_index=always") as client:
        assert client.current_database() == "main" and client.list_databases() == ["main"]
        client.create_database("photos")
        assert (tmp_path / "photos.db").read_bytes().startswith(b"SQLite format 3\x00")
        assert client.list_databases() == ["main", "photos"]
        client.use_database("photos")
        assert client.engine.vector_index == "always"  # type: ignore[attr-defined]  # settings carried over
        assert Path(client.engine.path) == (tmp_path / "photos.db").resolve()  # type: ignore[attr-defined]
        t = make_table(client)
        t.bulk_insert([{"label": str(i), "vec": [1.0, float(i), 0.5]} for i in range(30)])
        t.search([1.0, 3.0, 0.5]).limit(1).to_list()  # "always": the search builds the IVF file
        ivf = list(tmp_path.glob("photos.db.*.ivf"))
        assert ivf and t.has_vector_index()
        client.use_database("main")
        with pytest.raises(
            EngineError, match=r"cannot drop database 'notes': .*notes\.db' is not a SQLite database"
        ):
            client.drop_database("notes")
        client.drop_database("photos")
        assert not (tmp_path / "photos.db").exists() and not any(tmp_path.glob("photos.db*"))
        assert client.list_databases() == ["main"]


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "x.db", "sp ace", "-dash", "x" * 65])
def test_sqlite_database_names_must_be_safe_file_names(tmp_path: Path, bad: str) -> None:
    with lookalike.connect(tmp_path / "main.db") as client:
        with pytest.raises(ConfigurationError, match="is not a safe file name"):
            client.create_database(bad)
        with pytest.raises(ConfigurationError, match="is not a safe file name"):
            client.use_database(bad, ensure_db=True)
        with pytest.raises(ConfigurationError, match="is not a safe file name"):
            client.drop_database(bad)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["main.db"]


def test_sqlite_in_memory_has_no_databases() -> None:
    with lookalike.connect(":memory:") as client:
        assert client.current_database() is None
        with pytest.raises(ConfigurationError, match="in-memory SQLite database has no sibling databases"):
            client.list_databases()
        with pytest.raises(ConfigurationError, match="in-memory"):
            client.create_database("other")


# ---------------------------------------------------------------------- TiDB, as compiled SQL


def test_tidb_database_sql() -> None:
    # create_engine never connects by itself: only SQL text is produced below
    engine = TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))
    assert engine.database_ddl("create", "photos") == "CREATE DATABASE photos"
    assert engine.database_ddl("create", "my photos") == "CREATE DATABASE `my photos`"
    assert engine.database_ddl("drop", "photos") == "DROP DATABASE IF EXISTS photos"
    assert (engine.current_database_sql, engine.list_databases_sql) == ("SELECT DATABASE()", "SHOW DATABASES")
    assert engine.check_database_name("x" * 64) == "x" * 64
    with pytest.raises(ConfigurationError, match="longer than tidb's 64 bytes"):
        engine.check_database_name("x" * 65)
    assert engine.reopen_options() == {"exact_search_max_rows": 10_000, "tiflash_replica": True}
