"""The callbacks' hot statements, run straight on the driver's cursor.

Why: around each execution SQLAlchemy builds an execution context, processes parameters
and result metadata, and looks the statement up in its compiled cache: about 0.1 ms of CPU
a statement, as much as the driver and the database together. A Web Connector callback
runs four to six statements, so that was a third of its CPU. The statements stay
SQLAlchemy Core, compiled by the dialect once; values go through the column types' own
bind and result processors, so what comes back is what ``tx.execute`` would give.

What this module relies on inside SQLAlchemy (upper bound pinned in pyproject.toml): the
compiled statement's ``bind_names`` and ``positiontup``, ``dialect.positional``, the
pooled connection's ``dbapi_connection`` and ``info``, and the DB-API cursors of sqlite3
and psycopg 3. tests/integration/test_direct_statements.py guards it: every Direct
statement is run both ways, on SQLite and PostgreSQL, and must give the same rows, row
counts and errors as ``tx.execute``; it also checks that PostgreSQL keeps one plan per
statement. The gain (about a third of a callback's CPU, docs/benchmarks.md) is what
keeps this module worth its cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, String, Text, TypeDecorator, bindparam, exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, ColumnElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Boolean, TypeEngine

from qbwc_bridge.store.database import Tx

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # positional drivers (sqlite3): the parameters' order
    constants: dict[str, Any]  # literal values the statement carries as parameters
    binds: tuple[tuple[str, Processor], ...]
    types: tuple[Any, ...]  # the returned columns' types (none for a plain DML statement)


class Direct:
    """One statement, compiled once per dialect, executed on the DB-API cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        # Some result processors depend on the type the driver reports: known after the first run.
        self._results: dict[tuple[str, str], tuple[Processor | None, ...]] = {}

    def rows(self, tx: Tx, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows the statement returns, converted as SQLAlchemy would."""
        compiled = self._for(tx.dialect)
        cursor = self._execute(tx, compiled, [params], many=False)
        return self._converted(tx, compiled, cursor, cursor.fetchall())

    def rows_of_each(self, tx: Tx, params: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows the statement returns for each of ``params``, in turn.

        Why: a hundred orders in one multi-row INSERT make a statement of 1 500
        placeholders that the driver rewrites at every call; psycopg sends the short one a
        hundred times in one pipeline instead (30 ms became 20 ms). sqlite3 has no
        executemany that returns rows, and rewrites nothing: there SQLAlchemy's multi-row
        statement is the faster (ingest 10 % faster than a statement per order).
        """
        if not params:
            return []
        if tx.dialect.name != "postgresql":
            return [
                tuple(row) for row in tx.execute(cast(Executable, self.statement), list(params))
            ]
        compiled = self._for(tx.dialect)
        cursor = self._execute(tx, compiled, params, many=True, returning=True)
        rows: list[Any] = []
        while True:
            rows += cursor.fetchall()
            if not cursor.nextset():
                break
        return self._converted(tx, compiled, cursor, rows)

    def _converted(
        self, tx: Tx, compiled: _Compiled, cursor: Any, rows: list[Any]
    ) -> list[tuple[Any, ...]]:
        processors = self._results.get(_key(tx.dialect))
        if processors is None:
            processors = self._results[_key(tx.dialect)] = tuple(
                kind.dialect_impl(tx.dialect).result_processor(tx.dialect, column[1])
                for kind, column in zip(compiled.types, cursor.description, strict=True)
            )
        if not any(processors):
            return [tuple(row) for row in rows]
        return [
            tuple(
                value if convert is None else convert(value)
                for convert, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]

    def sql(self, dialect: Dialect) -> str:
        """The statement as the driver receives it."""
        return self._for(dialect).sql

    def run(self, tx: Tx, params: Sequence[dict[str, Any]]) -> int:
        """Execute for each of ``params`` (executemany); the total row count."""
        compiled = self._for(tx.dialect)
        return int(self._execute(tx, compiled, params, many=len(params) > 1).rowcount)

    def _execute(
        self,
        tx: Tx,
        compiled: _Compiled,
        params: Sequence[dict[str, Any]],
        *,
        many: bool,
        returning: bool = False,  # psycopg: keep each parameter set's rows (nextset())
    ) -> Any:
        values = [self._bound(compiled, one) for one in params]
        cursor = self._cursor(tx)
        try:
            if returning:
                cursor.executemany(compiled.sql, values, returning=True)
            elif many:
                cursor.executemany(compiled.sql, values)
            else:
                cursor.execute(compiled.sql, values[0])
        except tx.dialect.loaded_dbapi.Error as error:
            raise exc.DBAPIError.instance(
                compiled.sql, values, error, tx.dialect.loaded_dbapi.Error, dialect=tx.dialect
            ) from error
        return cursor

    @staticmethod
    def _bound(compiled: _Compiled, params: dict[str, Any]) -> Any:
        values = {**compiled.constants, **params}
        for name, convert in compiled.binds:
            values[name] = convert(values[name])
        if compiled.names is None:
            return values
        return tuple(values[name] for name in compiled.names)

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(_key(dialect))
        if compiled is None:
            compiled = self._compiled[_key(dialect)] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        binds = []
        constants = {}
        for bind, name in compiled.bind_names.items():  # type: ignore[attr-defined]
            if bind.expanding:
                raise ValueError(f"{name}: an expanding IN is compiled per length; use in_ids()")
            if not bind.required:
                constants[name] = bind.effective_value
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                binds.append((name, convert))
        columns = getattr(self.statement, "exported_columns", ())
        positional = compiled.positiontup if dialect.positional else None  # type: ignore[attr-defined]
        return _Compiled(
            sql=compiled.string,
            names=None if positional is None else tuple(positional),
            constants=constants,
            binds=tuple(binds),
            types=tuple(column.type for column in columns),
        )

    def _cursor(self, tx: Tx) -> Any:
        """This statement's own cursor on the connection, kept in the pooled connection's
        ``info``.

        A new psycopg cursor starts with empty type caches and looks up a loader for every
        column it returns (about 35 µs for the lease's 25 columns); one that ran another
        statement last builds its adapters again (about 5 µs). Each statement's rows are
        read before it runs again. SQLAlchemy empties ``info`` when it replaces a
        connection (after a PostgreSQL restart, say), so no cursor outlives its connection.
        """
        cursors = tx.connection.info.get(_CURSORS)
        if cursors is None:
            cursors = tx.connection.info[_CURSORS] = {}
        cursor = cursors.get(self)
        if cursor is None:
            connection = tx.connection.dbapi_connection
            assert connection is not None
            cursor = cursors[self] = connection.cursor()
        return cursor


def _key(dialect: Dialect) -> tuple[str, str]:
    return dialect.name, dialect.driver


_CURSORS = "qbwc_bridge.direct_cursors"


class _ListParameter(TypeDecorator[list[Any]]):
    """A list of ids or texts as one parameter: an array on PostgreSQL, JSON text on SQLite."""

    impl = String
    cache_ok = True

    def __init__(self, texts: bool = False) -> None:
        super().__init__()
        self.texts = texts

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(Text() if self.texts else BigInteger()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        values = [str(v) for v in value] if self.texts else [int(v) for v in value]
        return values if dialect.name == "postgresql" else json.dumps(values)


class _InList(ColumnElement[bool]):
    type = Boolean()
    # A comparison already: without this, SQLite (no boolean type) would get "(… IN …) = 1",
    # which hides the IN from the planner and scans the table.
    _is_implicitly_boolean = True
    inherit_cache = False  # compiled once by Direct, not through SQLAlchemy's cache

    def __init__(self, column: ColumnElement[Any], name: str, texts: bool = False) -> None:
        self.column = column
        self.values = bindparam(name, type_=_ListParameter(texts))


def in_ids(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN`` the ids given as parameter ``name`` (a list): one parameter however
    many ids, where SQLAlchemy's expanding IN renders one per id at every execution (and
    PostgreSQL then sees a new statement for every length)."""
    return _InList(column, name)


def in_texts(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN`` the texts given as parameter ``name`` (a list), as ``in_ids``: a
    hundred order numbers are one parameter, not a statement of a hundred placeholders
    for the driver to rewrite at every execution."""
    return _InList(column, name, texts=True)


@compiles(_InList)
def _in_json(element: _InList, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"


@compiles(_InList, "postgresql")
def _in_array(element: _InList, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY ({values})"
