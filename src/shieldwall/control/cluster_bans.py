"""One node's side of the cluster's bans, without the network: what to tell the cluster, and what the
cluster told us, written where this node's workers read bans.

Out: a new ban reaches `note` at once when a worker makes it (cluster/ban_wire.py), and `poll` finds
everything else in this node's ban files: the operator's manual bans and lifts (manual.json), a manual
ban the operator removed (sent as a lift: the other nodes drop their copies), and the workers' bans past
the ban messages' rate cap. A ban is sent again only when it ends later than what the cluster has.

In: `adopt` takes a batch another node published (or the whole set, read back after a reconnect), keeps
the strongest ban per target, applies lifts, and `write` saves the result where this node's workers
merge it like any other ban file (state/ban_store.py): bans/cluster.json holds the whole set, and each
round's new bans go into a small bans/cluster-<N>.json, so a worker's reload parses what is new, not
100,000 bans every time (a reload parses ~4 µs a ban). cluster.json is rewritten, and the segments
deleted, after a lift or a resync, every REWRITE_EVERY seconds, or past MAX_SEGMENTS. A lift sent by
this node applies here at once, too: the files must not keep refusing a client the operator let in.
"""

from __future__ import annotations

import time
from pathlib import Path

from shieldwall.cluster.bans import BanBatch
from shieldwall.limiter.bans import Ban, Lift
from shieldwall.state import ban_store

REWRITE_EVERY = 60.0  # seconds: cluster.json is rewritten this often anyway, dropping what has ended
# cluster-<N>.json files before they are folded into cluster.json: ~30 s of a ban wave at one segment
# per agent round; folding rewrites the whole file and makes every worker parse all of it again.
MAX_SEGMENTS = 600
BATCH = 500  # bans in one published batch (benchmarks/cluster_bans.py: ~11 ms of script for 500)


class NodeBans:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.cluster: dict[str, Ban] = {}  # the cluster's strongest ban per target (cluster.json)
        self.lifts: dict[str, Lift] = {}  # the cluster's latest lift per target
        self.pending = BanBatch()  # to publish
        self._sent: dict[str, float] = {}  # target -> end of the ban the cluster has (or was sent)
        self._manual: dict[str, Ban] = {}  # manual bans at the last poll: a vanished one is sent as a lift
        self._lifts_sent: set[tuple[str, float]] = set()
        self._stamp: ban_store.Stamp | None = None
        self._cache: ban_store.FileCache = {}
        self._new: dict[str, Ban] = {}  # bans adopted since the last write: the next segment
        self._whole = True  # cluster.json must be rewritten (a lift, a resync, or nothing written yet)
        self._segments = 0
        self._written = -REWRITE_EVERY

    def note(self, ban: Ban) -> None:
        """A ban a worker of this node just made."""
        if ban.end > self._sent.get(ban.target, -1.0):
            self._sent[ban.target] = ban.end
            self.pending.bans.append(ban)

    def poll(self, now: float, *, force: bool = False) -> None:
        """Find what changed in this node's own ban files (not cluster.json) since the last poll."""
        stamp = ban_store.changed_since(self.state_dir, None if force else self._stamp)
        if stamp is None:
            return
        self._stamp = stamp
        contents = ban_store.load_all(self.state_dir, now, self._cache, skip=ban_store.CLUSTER)
        for ban in contents.bans:
            self.note(ban)
        for lift in contents.lifts:
            if (lift.target, lift.at) not in self._lifts_sent:
                self._lift(lift)
        manual = {ban.target: ban for ban in ban_store.load(self.state_dir, ban_store.MANUAL, now).bans}
        for target, ban in self._manual.items():
            if target not in manual and ban.end > now:  # the operator removed it here: remove it everywhere
                self._lift(Lift(target, now, ban.until))
        self._manual = manual

    def _lift(self, lift: Lift) -> None:
        self._lifts_sent.add((lift.target, lift.at))
        self.pending.lifts.append(lift)
        self._sent.pop(lift.target, None)
        self.adopt(BanBatch(lifts=[lift]))

    def take(self) -> BanBatch | None:
        """What to publish now, at most BATCH bans (None: nothing); `give_back` it if the publication
        failed. Redis runs a script to its end before anything else: a ban wave goes out in pieces."""
        if not (self.pending.bans or self.pending.lifts):
            return None
        batch = BanBatch(bans=self.pending.bans[:BATCH], lifts=self.pending.lifts)
        self.pending = BanBatch(bans=self.pending.bans[BATCH:])
        return batch

    def give_back(self, batch: BanBatch) -> None:
        self.pending.bans[:0] = batch.bans
        self.pending.lifts[:0] = batch.lifts

    def adopt(self, batch: BanBatch, *, replace: bool = False) -> None:
        """Take the cluster's bans and lifts: one node's batch, or (`replace`) the whole set."""
        if replace:
            self.cluster, self.lifts = {}, {}
            self._sent, self._lifts_sent = {}, set()
            self._stamp = None  # after a reconnect, everything of ours the cluster lacks is sent again
            self._whole = True
        for lift in batch.lifts:
            latest = self.lifts.get(lift.target)
            if latest is None or latest.at < lift.at:
                self.lifts[lift.target] = lift
        for ban in batch.bans:
            covering = self.lifts.get(ban.target)
            if covering is not None and ban.since <= covering.at:
                continue
            known = self.cluster.get(ban.target)
            if known is None or known.end < ban.end:
                self.cluster[ban.target] = self._new[ban.target] = ban
            self._sent[ban.target] = max(self._sent.get(ban.target, -1.0), ban.end)
        for lift in batch.lifts:
            self._whole = True
            lifted = self.cluster.get(lift.target)
            if lifted is not None and lifted.since <= lift.at:
                del self.cluster[lift.target]

    def write(self, now: float) -> bool:
        """Save what changed: a segment of the new bans, or cluster.json whole when due (see the module
        docstring); whether anything was written. Raises ban_store.StateDirError when it cannot be."""
        whole = self._whole or self._segments >= MAX_SEGMENTS or now - self._written >= REWRITE_EVERY
        if not whole:
            if not self._new:
                return False
            self._segments += 1
            ban_store.save(self.state_dir, f"{ban_store.CLUSTER}-{self._segments}", self._new.values())
            self._new = {}
            return True
        wall = time.time()
        self.cluster = {target: ban for target, ban in self.cluster.items() if ban.end > wall}
        self.lifts = {t: lift for t, lift in self.lifts.items() if lift.until is None or lift.until > wall}
        ban_store.save(self.state_dir, ban_store.CLUSTER, self.cluster.values(), self.lifts.values())
        for writer in ban_store.writers(self.state_dir, f"{ban_store.CLUSTER}-"):  # all in cluster.json now
            ban_store.remove(self.state_dir, writer)
        self._new, self._whole, self._segments, self._written = {}, False, 0, now
        return True
