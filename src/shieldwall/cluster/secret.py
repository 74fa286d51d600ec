"""One challenge secret for the whole cluster, so a clearance cookie earned on one node is valid on all.

The supervisor calls `share_secret` before it forks (at start and on every reload), with the node's own
secret file already made (challenge/keys.py). The higher generation wins: the first node to start puts
its secret in Redis and the others take it; after `shieldwall challenge rotate-secret` on one node, that
node's next reload puts the new generation in Redis and every other node takes it at its own next
reload. Between equal generations Redis wins. Redis unreachable: the node keeps its own secret, and the
line it returns says so (cookies made on other nodes then fail here until both agree again).
"""

from __future__ import annotations

from pathlib import Path

from redis.exceptions import RedisError

from shieldwall.challenge import keys
from shieldwall.cluster.connection import sync_client
from shieldwall.cluster.keys import Keys
from shieldwall.config.cluster_schema import Cluster


def share_secret(cluster: Cluster, path: Path) -> str:
    """Make the node's secret file and the cluster's agree; a line for the log saying what happened.
    Raises keys.SecretFileError when the local file cannot be read or written."""
    assert cluster.redis is not None
    key = Keys(cluster.namespace).secret
    local = keys.load(path)
    try:
        with sync_client(cluster.redis, cluster.timeout) as client:
            created = client.set(key, keys.encode(local), nx=True)
            stored = client.get(key)
            shared = keys.decode(stored) if isinstance(stored, bytes) else None
            if created or shared is None or shared.generation < local.generation:
                if not created:
                    client.set(key, keys.encode(local))
                return f"challenge secret: this node's generation {local.generation} is now the cluster's"
    except (RedisError, OSError) as exc:
        return (
            f"challenge secret: cannot reach the cluster's Redis ({exc}); this node keeps its own, and "
            "clearance cookies from other nodes fail here until a reload with Redis back"
        )
    except ValueError as exc:
        return f"challenge secret: the cluster's copy is damaged ({exc}); this node keeps its own"
    if shared != local:
        keys.replace(path, shared)
        return f"challenge secret: took the cluster's (generation {shared.generation})"
    return f"challenge secret: the cluster's (generation {shared.generation})"
