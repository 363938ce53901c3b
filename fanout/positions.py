"""The positions channel's order, per connection (pure): the snapshot first, then each later version once.

Account updates reach a connection from two places that race: the user's Redis channel (every change, at most
once, possibly re-published) and the snapshot read from Redis when the channel goes live. ``AccountSequence``
turns them into what the client is promised: the snapshot, then every newer version in order, no version twice.
Updates that arrive before the snapshot wait for it (bounded: past ``limit`` the connection must go, as with
order updates); those the snapshot already covers are dropped.
"""

from __future__ import annotations

Frame = bytes | str


class AccountSequence:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.version: int | None = None  # the newest version let through; None: waiting for a snapshot
        self._early: list[tuple[int, Frame]] = []

    def await_snapshot(self) -> None:
        """A new snapshot was asked for (subscribe, or live again after an outage): hold updates until it comes."""
        self.version = None

    def clear(self) -> None:
        self.version = None
        self._early.clear()

    def take(self, frame: Frame, version: int, *, snapshot: bool = False) -> list[Frame] | str:
        """The frames to send now, in order, or why the connection must be dropped. A snapshot with a negative
        version means none could be read: it sends nothing and releases the updates that waited for it."""
        if snapshot:
            if self.version is not None and version <= self.version:
                return []  # a newer state went out already
            early, self._early = self._early, []
            self.version = version
            out = [frame] if version >= 0 else []
            for v, f in early:
                if v > self.version:
                    self.version = v
                    out.append(f)
            return out
        if self.version is None:
            if len(self._early) >= self.limit:
                return f"over {self.limit} account updates before the snapshot"
            self._early.append((version, frame))
            return []
        if version <= self.version:
            return []  # already sent (re-published, or covered by the snapshot)
        self.version = version
        return [frame]
