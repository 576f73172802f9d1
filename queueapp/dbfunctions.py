"""Portable SQL pieces for the statistics: durations in seconds and percentiles.

PostgreSQL computes percentiles with its ordered-set aggregate `percentile_cont`.
SQLite has none built in, so each SQLite connection gets an aggregate of the
same meaning (`queueapp_percentile_cont`, registered on `connection_created`).
Either way the query groups and aggregates in the database engine: Python never
builds one model object per ticket.
"""

from __future__ import annotations

import math
import threading

from django.db.models import Aggregate, FloatField, Func


class Seconds(Func):
    """`end - start` in seconds, as a float (NULL when either is NULL)."""

    output_field = FloatField()

    def __init__(self, end, start, **extra):
        super().__init__(end, start, **extra)

    def _compiled(self, compiler):
        (end, end_params), (start, start_params) = (
            compiler.compile(e) for e in self.get_source_expressions())
        return end, start, (*end_params, *start_params)

    def as_postgresql(self, compiler, connection, **extra):
        end, start, params = self._compiled(compiler)
        return f"EXTRACT(EPOCH FROM ({end} - {start}))::float8", params

    def as_sqlite(self, compiler, connection, **extra):
        # julianday() reads Django's stored UTC timestamps; a day is 86400 s.
        end, start, params = self._compiled(compiler)
        return f"((julianday({end}) - julianday({start})) * 86400.0)", params


class PercentileCont(Aggregate):
    """The continuous percentile (linear interpolation) of an expression; NULLs skipped.

    PostgreSQL: `percentile_cont(p) WITHIN GROUP (ORDER BY expr)`;
    SQLite: the registered aggregate `queueapp_percentile_cont(expr, p)`.
    """

    name = "PercentileCont"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        self.fraction = float(fraction)
        super().__init__(expression, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"percentile_cont({self.fraction!r}) WITHIN GROUP (ORDER BY {sql})", params

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"queueapp_percentile_cont({sql}, {self.fraction!r})", params


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """The same definition as PostgreSQL's percentile_cont, for a sorted copy of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _SqlitePercentile:
    """SQLite aggregate: collects one float per row of the group (not a model object)."""

    def __init__(self):
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction):
        self.fraction = fraction
        if value is not None:
            self.values.append(float(value))

    def finalize(self):
        return percentile_cont(self.values, self.fraction)


_flush = threading.local()


def _flushing() -> int:
    return int(getattr(_flush, "active", False))


def _let_flush_delete_events(ops) -> None:
    """Django empties SQLite tables with row DELETEs (`manage.py flush`, the
    teardown of transactional tests); PostgreSQL uses TRUNCATE, which fires no
    row trigger. Mark this thread as flushing meanwhile, so the append-only
    DELETE trigger (migration 0003, `WHEN NOT queueapp_flushing()`) lets exactly
    those through. A connection without our functions (the sqlite3 shell)
    cannot delete events at all: the trigger names an unknown function."""
    if getattr(ops, "_queueapp_flush_marked", False):
        return
    original = ops.execute_sql_flush

    def execute_sql_flush(sql_list):
        _flush.active = True
        try:
            return original(sql_list)
        finally:
            _flush.active = False

    ops.execute_sql_flush = execute_sql_flush
    ops._queueapp_flush_marked = True


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: teach each SQLite connection our functions."""
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("queueapp_percentile_cont", 2, _SqlitePercentile)
        connection.connection.create_function("queueapp_flushing", 0, _flushing)
        _let_flush_delete_events(connection.ops)
