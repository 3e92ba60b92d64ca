"""pytidb's core client surface: ``drop_table(if_not_exists=)``, foreign keys between models, result
and error shapes, and sessions. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import sqlalchemy.orm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateTable
from sqlmodel import Relationship

import lookalike
from lookalike import ConfigurationError, EngineError, Field, LookalikeError, SchemaError, TableModel
from lookalike.errors import TableNotFoundError
from lookalike.results import ExecuteResult, RowDict, SQLExecuteResult
from lookalike.schema import MODELS_METADATA
from lookalike.session import Session

both_engines = pytest.mark.parametrize("engine_url", ["sqlite", "postgres"], indirect=True)


def _drop(client: lookalike.Client, *names: str) -> None:
    """Drop in the order given (referencing tables first: PostgreSQL refuses the other order)."""
    for name in names:
        client.drop_table(name, if_not_exists="skip")


# --------------------------------------------------------------------------- drop_table (item 8)


def _simple_model(name: str) -> type[TableModel]:
    class Simple(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        label: str = Field(default="")

    return Simple


@both_engines
def test_drop_table_if_not_exists_values(client: lookalike.Client) -> None:
    client.create_table(schema=_simple_model("core_drop"), if_exists="overwrite")
    for bad in ("ignore", "SKIP", True, None, ""):
        with pytest.raises(ConfigurationError, match=r"if_not_exists must be 'raise' or 'skip'") as info:
            client.drop_table("core_drop", if_not_exists=bad)  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)  # pytidb raises ValueError here
        assert client.has_table("core_drop"), f"{bad!r} must not drop the table"
    client.drop_table("core_drop", if_not_exists="skip")  # exists: dropped
    assert not client.has_table("core_drop")
    client.drop_table("core_drop", if_not_exists="skip")  # missing: nothing happens
    with pytest.raises(TableNotFoundError, match="core_drop"):
        client.drop_table("core_drop", if_not_exists="raise")
    with pytest.raises(ConfigurationError, match="if_not_exists"):  # checked before the lookup too
        client.drop_table("core_drop", if_not_exists="maybe")  # type: ignore[arg-type]


@both_engines
def test_configuration_errors_are_value_errors(client: lookalike.Client) -> None:
    with pytest.raises(ValueError, match="if_exists") as info:
        client.create_table(schema=_simple_model("core_cfg"), if_exists="replace")  # type: ignore[arg-type]
    assert isinstance(info.value, LookalikeError) and isinstance(info.value, ConfigurationError)
    assert issubclass(lookalike.MissingDependencyError, ValueError)
    assert issubclass(lookalike.MissingDependencyError, ImportError)


# --------------------------------------------------------------------------- foreign keys (item 2)


def _user_and_order(prefix: str) -> tuple[type[TableModel], type[TableModel]]:
    class FkUser(TableModel):
        __tablename__ = f"{prefix}_users"
        id: int = Field(primary_key=True)
        name: str = Field(default="")

    class FkOrder(TableModel):
        __tablename__ = f"{prefix}_orders"
        id: int = Field(primary_key=True)
        user_id: int = Field(foreign_key=f"{prefix}_users.id")
        amount: float = Field(default=0.0)

    return FkUser, FkOrder


def _foreign_keys(client: lookalike.Client, table: str) -> list[tuple[str, str, str]]:
    """(column, referenced table, referenced column) as the database itself reports them."""
    inspector = sa.inspect(client.db_engine)
    return [
        (fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0])
        for fk in inspector.get_foreign_keys(table)
    ]


@pytest.fixture
def fk_tables(client: lookalike.Client) -> Iterator[tuple[lookalike.Table, lookalike.Table, type, type]]:
    user_model, order_model = _user_and_order("core_fk")
    _drop(client, "core_fk_orders", "core_fk_users")
    users = client.create_table(schema=user_model)
    orders = client.create_table(schema=order_model)
    yield users, orders, user_model, order_model
    _drop(client, "core_fk_orders", "core_fk_users")


@both_engines
def test_foreign_key_between_models(client: lookalike.Client, fk_tables: tuple) -> None:
    users, orders, user_model, order_model = fk_tables
    assert _foreign_keys(client, "core_fk_orders") == [("user_id", "core_fk_users", "id")]
    users.bulk_insert([user_model(id=1, name="ann"), user_model(id=2, name="bob")])
    orders.bulk_insert([order_model(id=10, user_id=1, amount=2.5), order_model(id=11, user_id=2, amount=4.0)])
    assert [o.user_id for o in orders.query(order_by="id").to_pydantic()] == [1, 2]
    joined = client.query(
        "SELECT u.name, o.amount FROM core_fk_orders o JOIN core_fk_users u ON u.id = o.user_id ORDER BY o.id"
    ).to_list()
    assert joined == [{"name": "ann", "amount": 2.5}, {"name": "bob", "amount": 4.0}]
    if client.engine.name == "postgresql":  # PostgreSQL enforces it (lookalike's SQLite does not)
        with pytest.raises(EngineError):
            orders.insert(order_model(id=12, user_id=99))
        assert orders.rows() == 2


class RelAuthor(TableModel):
    __tablename__ = "core_rel_authors"
    id: int = Field(primary_key=True)
    name: str = Field(default="")


# defined once, at module level, as pytidb's tests do: SQLAlchemy looks classes up by name in
# "RelBook.author_id == RelAuthor.id", and two live classes of one name make that ambiguous
class RelBook(TableModel):
    __tablename__ = "core_rel_books"
    id: int = Field(primary_key=True)
    author_id: int = Field(foreign_key="core_rel_authors.id")
    author: RelAuthor = Relationship(
        sa_relationship_kwargs={"primaryjoin": "RelBook.author_id == RelAuthor.id", "lazy": "joined"}
    )


@both_engines
def test_foreign_key_with_relationship(client: lookalike.Client) -> None:
    _drop(client, "core_rel_books", "core_rel_authors")
    try:
        client.create_table(schema=RelAuthor).insert(RelAuthor(id=1, name="ursula"))
        books = client.create_table(schema=RelBook)
        books.insert({"id": 5, "author_id": 1})
        assert _foreign_keys(client, "core_rel_books") == [("author_id", "core_rel_authors", "id")]
        with sa.orm.Session(client.db_engine) as session:
            book = session.get(RelBook, 5)
            assert book is not None and book.author.name == "ursula"
    finally:
        _drop(client, "core_rel_books", "core_rel_authors")


@both_engines
def test_redefining_a_model_never_merges_columns(client: lookalike.Client) -> None:
    class First(TableModel):
        __tablename__ = "core_redef"
        id: int = Field(primary_key=True)
        old_col: str = Field(default="")

    class Second(TableModel):
        __tablename__ = "core_redef"
        id: int = Field(primary_key=True)
        new_col: int = Field(default=0)

    assert list(First.__table__.columns.keys()) == ["id", "old_col"]  # type: ignore[attr-defined]
    assert list(Second.__table__.columns.keys()) == ["id", "new_col"]  # type: ignore[attr-defined]
    table = client.create_table(schema=Second, if_exists="overwrite")
    table.insert(Second(id=1, new_col=3))
    assert table.query().to_list() == [{"id": 1, "new_col": 3}]

    class NotATable(TableModel, table=False):  # a mixin replaces no table, whatever it names
        __tablename__ = "core_redef"
        extra: int = 0

    assert MODELS_METADATA.tables["core_redef"] is Second.__table__  # type: ignore[attr-defined]

    class Child(TableModel):  # a foreign key finds the newest definition of the name
        __tablename__ = "core_redef_child"
        id: int = Field(primary_key=True)
        parent_id: int = Field(foreign_key="core_redef.id")

    assert next(iter(Child.__table__.foreign_keys)).column.table is Second.__table__  # type: ignore[attr-defined]


@both_engines
def test_reopened_table_keeps_the_model_of_that_name(
    engine_url: str, client: lookalike.Client, fk_tables: tuple
) -> None:
    _users, _orders, user_model, _order_model = fk_tables
    other = lookalike.connect(engine_url)
    try:
        reopened = other.open_table("core_fk_users")
        assert reopened.spec.sa_table is not user_model.__table__  # type: ignore[attr-defined]
    finally:
        other.close()

    class Later(TableModel):  # still resolves to the user's model, not the rebuilt one
        __tablename__ = "core_fk_later"
        id: int = Field(primary_key=True)
        user_id: int = Field(foreign_key="core_fk_users.id")

    assert next(iter(Later.__table__.foreign_keys)).column.table is user_model.__table__  # type: ignore[attr-defined]


@both_engines
def test_foreign_key_to_an_unknown_table(client: lookalike.Client) -> None:
    class Dangling(TableModel):
        __tablename__ = "core_dangling"
        id: int = Field(primary_key=True)
        ghost_id: int = Field(foreign_key="core_no_such_table.id")

    with pytest.raises(
        SchemaError, match=r"'ghost_id' of 'core_dangling' references 'core_no_such_table.id'"
    ):
        client.create_table(schema=Dangling)
    assert not client.has_table("core_dangling")


def test_foreign_key_tidb_sql() -> None:
    """TiDB gets the same constraint (checked as the DDL MySQL's dialect writes)."""
    _user, order = _user_and_order("core_tidb")
    ddl = str(CreateTable(order.__table__).compile(dialect=mysql.dialect()))  # type: ignore[attr-defined]
    assert "FOREIGN KEY(user_id) REFERENCES core_tidb_users (id)" in ddl


# --------------------------------------------------------------------------- results and errors (item 6)


class Score(TableModel):
    __tablename__ = "core_scores"
    id: int = Field(primary_key=True)
    a: int = Field(default=0)
    b: int = Field(default=0)
    label: str | None = Field(default=None, max_length=20)


@pytest.fixture
def scores(client: lookalike.Client) -> lookalike.Table:
    return client.create_table(schema=Score, if_exists="overwrite")


@both_engines
def test_columns_read_as_objects_and_dicts(scores: lookalike.Table) -> None:
    cols = scores.columns()
    assert [c.column_name for c in cols] == ["id", "a", "b", "label"]
    assert [c["name"] for c in cols] == ["id", "a", "b", "label"]  # dict access as before
    assert all(c.column_type == c["type"] and c.column_type for c in cols)
    assert "INT" in cols[1].column_type.upper() and "20" in cols[3].column_type
    assert cols[0].primary_key is True and cols[3].nullable is True
    assert dict(cols[0]) == {
        "name": "id",
        "type": cols[0]["type"],
        "nullable": False,
        "primary_key": True,
        "vector": False,
    }
    with pytest.raises(AttributeError):
        cols[0].no_such_attribute  # noqa: B018


@both_engines
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=0, max_size=12),
    dir_a=st.sampled_from(["asc", "desc", "DESC"]),
    dir_b=st.sampled_from(["asc", "desc"]),
)
def test_order_by_dict_matches_a_sort(scores: lookalike.Table, rows: list, dir_a: str, dir_b: str) -> None:
    scores.truncate()
    scores.bulk_insert([Score(id=i, a=a, b=b) for i, (a, b) in enumerate(rows)])
    # the reference: Python's stable sorts, last key first; id breaks ties in both
    expected = sorted(enumerate(rows), key=lambda r: r[0])
    expected.sort(key=lambda r: r[1][1], reverse=dir_b == "desc")
    expected.sort(key=lambda r: r[1][0], reverse=dir_a.lower() == "desc")
    got = scores.query(order_by={"a": dir_a, "b": dir_b, "id": "asc"}).to_list()
    assert [r["id"] for r in got] == [i for i, _ in expected]
    # the forms accepted before give the same order
    forms = [("a", dir_a.lower()), ("b", dir_b), "id"]
    assert [r["id"] for r in scores.query(order_by=forms).to_list()] == [i for i, _ in expected]


@both_engines
def test_order_by_bad_arguments(scores: lookalike.Table) -> None:
    with pytest.raises(ConfigurationError, match="direction must be 'asc' or 'desc', got 'down'") as info:
        scores.query(order_by={"a": "down"})
    assert isinstance(info.value, ValueError)
    with pytest.raises(SchemaError, match="unknown column 'nope' in order_by"):
        scores.query(order_by={"nope": "desc"})


@both_engines
def test_save_returns_the_model(scores: lookalike.Table) -> None:
    first = Score(id=1, a=1, label="new")
    saved = scores.save(first)
    assert saved is first and saved.label == "new"
    changed = Score(id=1, a=2, label="changed")
    saved = scores.save(changed)
    assert saved is changed and (saved.a, saved.label) == (2, "changed")
    assert scores.get(1).label == "changed" and scores.rows() == 1
    as_dict = scores.save({"id": 2, "a": 5})  # a dict comes back a dict that reads like the model
    assert isinstance(as_dict, RowDict) and (as_dict["a"], as_dict.a, as_dict.b) == (5, 5, 0)  # b: default
    as_dict = scores.save({"id": 2, "a": 6, "label": "x"})
    assert as_dict == {"id": 2, "a": 6, "label": "x"} and (as_dict.id, as_dict.label) == (2, "x")
    assert scores.get(2).a == 6 and scores.rows() == 2
    with pytest.raises(AttributeError):
        as_dict.no_such_column  # noqa: B018


@both_engines
def test_execute_result(client: lookalike.Client, scores: lookalike.Table) -> None:
    scores.bulk_insert([Score(id=i, a=i) for i in range(4)])
    result = client.execute("UPDATE core_scores SET b = 7 WHERE a >= :lo", {"lo": 2})
    assert isinstance(result, ExecuteResult) and result.success and result.message is None
    assert result.rowcount == 2 and result == 2 and int(result) == 2  # the int it used to be
    with pytest.raises(EngineError, match="core_missing"):  # raises by default, unlike pytidb
        client.execute("UPDATE core_missing SET b = 1")
    failed = client.execute("UPDATE core_missing SET b = 1", raise_error=False)
    assert failed == ExecuteResult(rowcount=0, success=False, message=failed.message)
    assert not failed.success and "core_missing" in (failed.message or "")
    assert SQLExecuteResult is ExecuteResult
    assert client.query("SELECT COUNT(*) FROM core_scores WHERE b = 7").scalar() == 2


# --------------------------------------------------------------------------- sessions (item 4)


def _balances(table: lookalike.Table) -> list[int]:
    return [r["a"] for r in table.query(order_by="id").to_list()]


@both_engines
def test_session_commit_and_rollback(client: lookalike.Client, scores: lookalike.Table) -> None:
    scores.bulk_insert([Score(id=1, a=100), Score(id=2, a=100)])
    with client.session() as session:
        assert isinstance(session, Session)
        scores.update({"a": 90}, {"id": 1})
        client.execute("UPDATE core_scores SET a = a + 10 WHERE id = 2")
        session.rollback()  # both calls joined the session: both are undone
        assert _balances(scores) == [100, 100]
        scores.update({"a": 95}, {"id": 1})
        session.commit()  # kept, even though the block fails below
        scores.update({"a": 0}, {"id": 2})
        with client.session() as inner:  # nested: the same session
            assert inner is session
    assert _balances(scores) == [95, 0]
    with pytest.raises(RuntimeError), client.session() as session:
        scores.update({"a": 1}, {"id": 1})
        session.commit()
        scores.update({"a": 2}, {"id": 2})
        raise RuntimeError("boom")
    assert _balances(scores) == [1, 0]  # committed part stays, the rest rolled back
    with client.session() as session:
        assert session.execute("SELECT COUNT(*) FROM core_scores").scalar() == 2


@both_engines
def test_provided_session(client: lookalike.Client, scores: lookalike.Table) -> None:
    scores.bulk_insert([Score(id=1, a=100)])
    with sa.orm.Session(client.db_engine) as outer:
        with client.session(provided_session=outer) as session:
            scores.update({"a": 101}, {"id": 1})
            assert scores.get(1).a == 101  # seen inside: same transaction
            assert outer.execute(sa.text("SELECT a FROM core_scores WHERE id = 1")).scalar() == 101
            session.rollback()  # acts on the provided session
            assert scores.get(1).a == 100
            scores.update({"a": 102}, {"id": 1})
        assert client.database.in_session is False
        outer.rollback()  # its owner decides: the block did not commit it
    assert scores.get(1).a == 100
    with sa.orm.Session(client.db_engine) as outer:
        with client.session(provided_session=outer):
            scores.update({"a": 103}, {"id": 1})
        outer.commit()
    assert scores.get(1).a == 103
    with client.db_engine.connect() as conn:  # a Connection works too
        with client.session(provided_session=conn):
            client.execute("UPDATE core_scores SET a = 104 WHERE id = 1")
        conn.commit()
    assert scores.get(1).a == 104


@both_engines
def test_provided_session_bad_values(client: lookalike.Client, tmp_path) -> None:
    with pytest.raises(
        ConfigurationError, match="provided_session must be a SQLAlchemy Session or Connection, got str"
    ):
        with client.session(provided_session="nope"):
            pass
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with sa.orm.Session(other) as foreign:
        with pytest.raises(ConfigurationError, match="another database"):
            with client.session(provided_session=foreign):
                pass
    other.dispose()
