"""Prepared statements for the hot path: SQLAlchemy's SQL and type conversions, run on the
DBAPI cursor.

An event runs a few statements, in one or two transactions. Through `Connection.execute` each
statement paid SQLAlchemy's per-execution machinery (execution context, events, result set-up)
and each transaction more (pool checkout, the `begin` event, commit): several times the cost
of the same work on the DBAPI cursor (bench/FIGURES.md), and that CPU is held under the GIL
every other request in the process waits for.

`Prepared` compiles a Core statement once per dialect and keeps what `execute` needs: the SQL
text, the order of positional parameters, each parameter's bind processor (UUIDs as hex on
SQLite, JSON dumped, aware datetimes) and each returned column's result processor. Statements
with "expanding" parameters (`IN` lists) are not supported; use Core for those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from runtime.store.rawpool import RawPool

Processor = Callable[[Any], Any] | None
Build = Callable[[Dialect], ClauseElement]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    names: tuple[str, ...]  # in parameter order (positional) or each once (named)
    processors: dict[str, Processor]
    constants: dict[str, Any]  # values baked into the statement, e.g. `.values(x=None)`
    results: tuple[Processor, ...]

    def bind(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = {**self.constants, **params}
        processed = {}
        for name in dict.fromkeys(self.names):
            value, process = values[name], self.processors[name]
            processed[name] = value if process is None else process(value)
        if self.positional:
            return tuple(processed[name] for name in self.names)
        return processed


class Prepared:
    """A statement (or a builder, for dialect-specific ones such as upserts), compiled on first
    use for each dialect. `returns`: the columns it returns, for their result processing.
    `column_keys`: an INSERT's columns passed as parameters (as `compile` takes them)."""

    def __init__(
        self,
        statement: ClauseElement | Build,
        returns: Sequence[ColumnElement[Any]] = (),
        column_keys: Sequence[str] | None = None,
    ):
        self._build = statement if callable(statement) else (lambda _dialect: statement)
        self._returns = tuple(returns)
        self._column_keys = None if column_keys is None else list(column_keys)
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        done = self._compiled.get(dialect.name)
        if done is None:
            done = self._compiled[dialect.name] = self._compile(dialect)
        return done

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._build(dialect).compile(dialect=dialect, column_keys=self._column_keys)
        assert isinstance(compiled, SQLCompiler)
        processors: dict[str, Processor] = {}
        constants: dict[str, Any] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError(f"{name}: expanding parameters cannot be prepared")
            processors[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if not bind.required:
                constants[name] = bind.effective_value
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(processors)
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self._returns
        )
        return _Compiled(compiled.string, positional, names, processors, constants, results)


class RawTransaction:
    """One transaction on a DBAPI connection; see `Database.raw`."""

    def __init__(self, cursor: Any, dialect: Dialect):
        self._cursor = cursor
        self._dialect = dialect

    @property
    def dialect_name(self) -> str:
        return str(self._dialect.name)

    @property
    def integrity_error(self) -> type[Exception]:
        """The driver's IntegrityError (a unique or foreign key violation), to catch."""
        return cast(type[Exception], self._dialect.loaded_dbapi.IntegrityError)

    def execute(self, statement: Prepared, params: Mapping[str, Any]) -> int:
        """Run `statement`; the number of rows it changed."""
        compiled = statement.compiled(self._dialect)
        self._cursor.execute(compiled.sql, compiled.bind(params))
        return int(self._cursor.rowcount)

    def first(self, statement: Prepared, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run `statement` (a SELECT or ... RETURNING); its first row, converted, or None."""
        compiled = statement.compiled(self._dialect)
        self._cursor.execute(compiled.sql, compiled.bind(params))
        row = self._cursor.fetchone()
        if row is None:
            return None
        self._cursor.fetchall()  # finish the statement (SQLite keeps it running otherwise)
        return tuple(
            value if process is None else process(value)
            for process, value in zip(compiled.results, row, strict=True)
        )


    def all(self, statement: Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run `statement` (a SELECT or ... RETURNING); every row, converted."""
        compiled = statement.compiled(self._dialect)
        self._cursor.execute(compiled.sql, compiled.bind(params))
        return [
            tuple(value if process is None else process(value)
                  for process, value in zip(compiled.results, row, strict=True))
            for row in self._cursor.fetchall()
        ]


@contextmanager
def raw_transaction(
    pool: RawPool, *, begin: str | None, autocommit: bool = False
) -> Iterator[RawTransaction]:
    """A transaction on a pooled DBAPI connection: committed on success, rolled back on any
    exception; a connection the driver reports as disconnected (or that cannot roll back) is
    closed instead of going back to the pool.

    `autocommit`: the caller runs statements that each stand alone (no BEGIN, no COMMIT: two
    round trips fewer on PostgreSQL). SQLite connections are in autocommit mode between the
    BEGINs we emit, so there `begin` is simply skipped."""
    connection = pool.take()
    standalone = autocommit and pool.dialect.name == "postgresql"
    usable = False
    try:
        if standalone:
            connection.autocommit = True
        cursor = connection.cursor()
        try:
            if begin is not None and not autocommit:
                cursor.execute(begin)
            yield RawTransaction(cursor, pool.dialect)
            connection.commit()
        except BaseException as exc:
            usable = _rolled_back(pool.dialect, connection, cursor, exc)
            raise
        else:
            usable = True
        finally:
            cursor.close()
            if usable and standalone:
                usable = _autocommit_off(connection)
    finally:
        if usable:
            pool.give(connection)
        else:
            pool.discard(connection)


def _rolled_back(dialect: Dialect, connection: Any, cursor: Any, exc: BaseException) -> bool:
    """Roll back after `exc`; whether the connection can be used again."""
    dbapi = dialect.loaded_dbapi
    if isinstance(exc, dbapi.Error) and dialect.is_disconnect(cast(Any, exc), connection, cursor):
        return False
    try:
        connection.rollback()
    except dbapi.Error:
        return False
    return True


def _autocommit_off(connection: Any) -> bool:
    try:
        connection.autocommit = False
    except Exception:
        return False
    return True
