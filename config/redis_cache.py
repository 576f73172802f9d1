"""Django's Redis cache with one connection pool per process, not per thread.

Django's `caches` gives every thread its own backend instance, and the stock
`RedisCache` gives every instance its own redis-py connection pool. A process
serving a crowd had ~1,200 request threads, so ~1,200 pools each opening its
own Redis connection: py-spy of daphne under `bench/waiting_room.py` put 14 %
of the samples holding the GIL in opening Redis connections (the RESP3
handshake and health check) for the rate limit's one `SET NX`
(docs/benchmarks.md, session 7). A redis-py pool is thread-safe, so here all
instances of a process with the same server and options share one.

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

_pools: dict[tuple, object] = {}
_pools_lock = threading.Lock()


class SharedPoolClient(RedisCacheClient):
    def __init__(self, servers, **options):
        # What makes two pools interchangeable: the server and the options as given.
        self._shared_key = (tuple(servers), tuple(sorted((k, repr(v)) for k, v in options.items())))
        options.setdefault("pool_class", "redis.BlockingConnectionPool")
        super().__init__(servers, **options)

    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        pool = self._pools.get(index)
        if pool is None:
            key = (self._shared_key, index)
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            self._pools[index] = pool
        return pool


class SharedPoolRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache`, its connections shared by the process's threads."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolClient
