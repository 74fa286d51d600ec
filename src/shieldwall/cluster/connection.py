"""Redis clients for `[cluster] redis`, from the URL forms the config accepts (config/cluster_schema.py).

redis-py does the work: plain and TLS URLs and unix sockets through `from_url`, Sentinel through its
`Sentinel.master_for` (redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]), Redis Cluster through
`RedisCluster.from_url`. Every command is bounded by `timeout`: a node never waits long on a lost Redis.
Every key shieldwall uses carries the hash tag of `keys.Keys`, so in a Redis Cluster they share one slot
and the Lua scripts may touch several at once.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

SENTINEL = "redis+sentinel"
_SENTINELS: weakref.WeakKeyDictionary[aioredis.Redis, AsyncSentinel] = weakref.WeakKeyDictionary()
CLUSTER = "redis+cluster"


def async_client(url: str, timeout: float) -> aioredis.Redis:
    """A client for the control process's and the workers' event loops; close it with `aclose`."""
    options = _options(timeout)
    scheme = urlsplit(url).scheme
    if scheme == SENTINEL:
        hosts, service, db, password = _sentinel(url)
        sentinel = AsyncSentinel(hosts, **options)  # type: ignore[no-untyped-call]
        client: aioredis.Redis = sentinel.master_for(service, db=db, password=password, **options)
        _SENTINELS[client] = sentinel
        return client
    if scheme == CLUSTER:
        return AsyncRedisCluster.from_url(_as_redis(url), **options)  # type: ignore[return-value]
    return aioredis.from_url(url, **options)


async def aclose(client: aioredis.Redis) -> None:
    """Close `client`, and the connections to its sentinels if it came through Sentinel (closing the
    master's client alone leaves those open)."""
    await client.aclose()
    sentinel = _SENTINELS.pop(client, None)
    if sentinel is not None:
        for connection in sentinel.sentinels:
            await connection.aclose()


@contextlib.contextmanager
def sync_client(url: str, timeout: float) -> Iterator[redis.Redis]:
    """A blocking client for the supervisor before it forks (cluster/secret.py), closed when the block
    ends, its sentinels' connections too: the workers forked next must not inherit them."""
    options = _options(timeout)
    scheme = urlsplit(url).scheme
    sentinel: Sentinel | None = None
    if scheme == SENTINEL:
        hosts, service, db, password = _sentinel(url)
        sentinel = Sentinel(hosts, **options)  # type: ignore[no-untyped-call]
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            service, db=db, password=password, **options
        )
    elif scheme == CLUSTER:
        client = RedisCluster.from_url(_as_redis(url), **options)  # type: ignore[assignment]
    else:
        client = redis.Redis.from_url(url, **options)
    try:
        yield client
    finally:
        client.close()
        for connection in sentinel.sentinels if sentinel is not None else ():
            connection.close()


def _options(timeout: float) -> dict[str, Any]:
    """Every command, and every connection attempt, bounded by `timeout`."""
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def _as_redis(url: str) -> str:
    return "redis" + url[len(CLUSTER) :]


def _sentinel(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """(sentinels, service name, db, password) of a redis+sentinel URL; ValueError when malformed."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    password = unquote(parts.password) if parts.password else None
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url}: each sentinel must be HOST:PORT")
        hosts.append((host.strip("[]"), int(port)))
    path = [part for part in parts.path.split("/") if part]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"{url}: write the service name after the sentinels, e.g. /mymaster or /mymaster/0")
    return hosts, path[0], int(path[1]) if len(path) == 2 else 0, password
