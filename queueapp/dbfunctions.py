"""Portable SQL pieces for the statistics: durations in seconds and percentiles;
the hot reads compiled once (`CompiledSelect`) and prepared on PostgreSQL
(`prepared_cursor`).

PostgreSQL computes percentiles with its ordered-set aggregate `percentile_cont`.
SQLite has none built in, so each SQLite connection gets an aggregate of the
same meaning (`queueapp_percentile_cont`, registered on `connection_created`).
Either way the query groups and aggregates in the database engine: Python never
builds one model object per ticket.
"""

from __future__ import annotations

import functools
import math
import sys
import threading

from django.db import connections
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


def prepared_cursor(using: str):
    """A Django cursor whose statements PostgreSQL plans once per connection.

    Django's PostgreSQL cursors bind values on the client (the values are
    quoted into the text) and prepare nothing (`prepare_threshold` None, for
    connection poolers that cannot keep prepared statements), so the server
    parses and plans a statement every time it runs. Under
    bench/join_throughput.py planning was about a fifth of PostgreSQL's perf
    samples, parsing beside it, and preparing the join's statements took its
    CPU per join from 6.2 to 3.5 ms (docs/benchmarks.md, issue 9). This cursor binds on
    the server and prepares each statement on its first run on a connection
    (psycopg keeps the names, per connection; the pool keeps connections),
    and is wrapped as Django wraps its own (errors as Django's, queries
    logged where Django logs them). Elsewhere (SQLite): Django's cursor.

    A statement run here must say the type of any value whose type its place
    does not fix (a `jsonb_build_object` value: `%(x)s::text`); the client-side
    cursor never needed to."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    if connection.connection.prepare_threshold is None:
        # Django's None turns psycopg's preparing off altogether, `prepare=True`
        # included; a threshold never reached prepares only what asks to be.
        # Django's own cursors bind on the client and never prepare.
        connection.connection.prepare_threshold = sys.maxsize
    raw = _prepared_cursor_class()(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


@functools.cache
def _prepared_cursor_class():
    import psycopg  # here: the embedded default (SQLite) never needs it

    class PreparedCursor(psycopg.Cursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


class CompiledSelect:
    """The SQL of an ORM queryset, built and compiled once per process and
    database, then run with new values: for the few hot reads where building
    the queryset and compiling it costs more CPU than the query itself (issue 9:
    the ORM building SQL was about half of a kiosk join's CPU).

    `build(**markers)` returns the queryset; each marker is a value no real
    call passes (a negative id, a date in 1900), found again in the compiled
    parameters and replaced by the caller's value on each run. The queryset
    stays the one definition of the read (no hand-written copy of the rule).
    """

    def __init__(self, build, *, prepared: bool = False, **markers):
        self._build = build
        self._prepared = prepared  # `first` reads through `prepared_cursor`
        self._markers = markers
        self._compiled: dict[str, tuple[str, list]] = {}
        self._builders: dict[str, _InstanceBuilder] = {}
        self._lock = threading.Lock()

    def sql(self, using: str, **values) -> tuple[str, list]:
        """(sql, params) of the queryset for these values (one per marker)."""
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compile(using)
                self._compiled[using] = compiled
        sql, template = compiled
        # A wrapped parameter (psycopg's Int2 for a smallint column) keeps its wrapper.
        return sql, [value if name is None else wrap(values[name]) if wrap else values[name]
                     for name, value, wrap in template]

    def first(self, using: str, **values):
        """The queryset's first model instance for these values, with its
        `select_related` objects and annotations as the ORM would set them; None
        when no row. What the ORM's ModelIterable does with a row, done with what
        the compiler worked out once (converters, where each model's columns are)."""
        sql, params = self.sql(using, **values)
        with (prepared_cursor(using) if self._prepared else connections[using].cursor()) as cursor:
            cursor.execute(sql, params)
            return self.from_row(using, cursor.fetchone())

    def from_row(self, using: str, row: tuple | None):
        """`first`'s instance from a row of `sql(using, ...)` fetched by the
        caller (an async connection: services/_join_async.py); None for None."""
        if row is None:
            return None
        build = self._builders[using]
        if build.converters:
            row = next(iter(build.compiler.apply_converters([row], build.converters)))
        obj = build.from_db(using, build.init_list, row[build.start:build.end])
        for populator in build.populators:
            populator.populate(row, obj)
        for name, position in build.annotations:
            setattr(obj, name, row[position])
        return obj

    def _compile(self, using: str) -> tuple[str, list]:
        queryset = self._build(**self._markers)
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        if compiler.klass_info is not None:  # a queryset of model instances (not values())
            self._builders[using] = _InstanceBuilder(queryset, compiler, using)
        by_value = {_key(v): name for name, v in self._markers.items()}
        template = []
        for p in params:
            name = by_value.get(_key(p))
            wrapped = name is not None and isinstance(p, int) and type(p) is not int
            template.append((name, p, type(p) if wrapped else None))
        missing = set(self._markers) - {name for name, _, _ in template}
        if missing:  # a marker the compiler changed (a conversion): the cache would be wrong
            raise ValueError(f"CompiledSelect: markers {sorted(missing)} not found in the compiled parameters")
        return sql, template


class _InstanceBuilder:
    """How a compiled queryset's rows become instances (Django's ModelIterable, for one row)."""

    def __init__(self, queryset, compiler, using: str):
        from django.db.models.query import _get_from_db, get_related_populators

        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        self.compiler, self.start, self.end = compiler, fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start:self.end]]
        self.from_db = _get_from_db(klass_info["model"], queryset._fetch_mode)
        self.populators = get_related_populators(klass_info, select, using, queryset._fetch_mode)
        self.annotations = list((compiler.annotation_col_map or {}).items())
        self.converters = compiler.get_converters([s[0] for s in select[:compiler.col_count]])


def _key(value) -> tuple:
    # An int and psycopg's Int2/Int8 of it are the same marker; a bool is no int here.
    if isinstance(value, int) and not isinstance(value, bool):
        return (int, int(value))
    return (type(value), value)
