"""Django's Redis cache with one connection pool per process, not per thread.

Django's `caches` gives every thread its own backend instance, and the stock
`RedisCache` gives every instance its own redis-py connection pool. A process
serving a crowd had ~1,200 request threads, so ~1,200 pools each opening its
own Redis connection: py-spy of daphne under `bench/waiting_room.py` put 14 %
of the samples holding the GIL in opening Redis connections (the RESP3
handshake and health check) for the rate limit's one `SET NX`
(docs/benchmarks.md, session 7). A redis-py pool is thread-safe, and here all
backend instances of a process with the same server and options share one
client (`SharedPoolRedisCache._cache`), so they share its pools.

Why the client and not only its pools: `caches` makes a backend per request
context, and Django's client asks redis-py for a `DriverInfo`, which looks its
own version up in the installed packages' metadata (`importlib.metadata`, a
scan of `sys.path`): 17 % of a request thread's busy samples for a
waiting-room arrival, whose rate limit is one `SET NX` (py-spy, session 11).

The shared pool is redis-py's `BlockingConnectionPool`: at most
`max_connections` (OPTIONS; `REDIS_CACHE_CONNECTIONS` in settings) are open,
and a thread that finds them all in use waits up to `timeout` seconds for one
instead of opening another. Both are redis-py's own options, passed as Django
passes OPTIONS. redis-py's pool resets itself in a forked child (it checks the
pid), so a pool made before a fork is not shared across processes.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple, RedisCacheClient] = {}
_clients_lock = threading.Lock()


class SharedPoolClient(RedisCacheClient):
    """Django's client, one per process and options (`SharedPoolRedisCache`),
    making each of its pools once however many threads ask at the same time."""

    def __init__(self, servers, **options):
        options.setdefault("pool_class", "redis.BlockingConnectionPool")
        super().__init__(servers, **options)
        self._pools_lock = threading.Lock()

    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        pool = self._pools.get(index)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(index)
                if pool is None:
                    pool = self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
        return pool


class SharedPoolRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache`, its client and connections shared by the process's threads."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolClient

    @cached_property
    def _cache(self) -> RedisCacheClient:
        # What makes two clients interchangeable: the servers and the options as given.
        key = (tuple(self._servers), tuple(sorted((k, repr(v)) for k, v in self._options.items())))
        client = _clients.get(key)
        if client is None:
            with _clients_lock:
                client = _clients.get(key)
                if client is None:
                    client = _clients[key] = self._class(self._servers, **self._options)
        return client
