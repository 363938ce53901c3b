"""Conflation tiers (pure): how often each client is sent its symbols' conflated state, and when that changes.

A tier is a flush period from a small ladder (``LADDER``: every flush, 250 ms, 1 s). A client's effective period
is the slower of its own cap (``Subscribe.max_rate_hz``) and its tier's; its cap also sets its *floor*, the
fastest tier it may be in (the slowest ladder period not above the cap's period), so every move down really
slows it. A client not due on a flush is simply skipped by the hub for ``quotes`` and ``depth``: its edges stay
owed, and when it is due it gets each symbol's newest state once (``Pacing``: per hub slot, numpy arrays; no
per-client queue, the per-symbol encode-once design is untouched). Trades, bars and status are streams and are
not paced.

The policy (``TierLadder``) takes what the adapter already knows about slow consumers: a client *falls behind*
when its transport pauses it (the write buffer's high-water mark, ``FanoutConfig.write_buffer_high``); from then
on it is watched, and at each sweep (``sweep(now, backlog)``, every ``TierPolicy.sweep_every`` s) it is *behind*
while paused or holding more than ``behind_bytes`` unsent, and *keeping up* while holding at most
``clear_bytes``. Behind for ``down_after`` s without a break: one tier down (and the clock starts again);
keeping up for ``up_after`` s without a break: one tier up, never above its floor. ``up_after`` is ten times
``down_after`` by default and the two byte marks are apart: hysteresis, so a client on a marginal link does not
flap. The disconnect rules (``slow_client_timeout``, ``write_buffer_max``) stay as they were; a paused client
reaches the bottom tier long before the timeout cuts it off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LADDER: tuple[float, ...] = (0.0, 0.25, 1.0)  # seconds between a client's flushes per tier (0: every flush)
MIN_RATE_HZ = 0.1  # the smallest cap a client may ask for (every 10 s); 0 means no cap
BAD_RATE = "bad_rate"  # the Error code for a max_rate_hz refused


def rate_problem(hz: float) -> str | None:
    """Why ``hz`` is not a cap a client may ask for (None: it is)."""
    if math.isfinite(hz) and (hz == 0 or hz >= MIN_RATE_HZ):
        return None
    return f"max_rate_hz must be 0 (no cap) or a finite number of at least {MIN_RATE_HZ:g}, not {hz!r}"


def floor_of(cap_period: float, ladder: tuple[float, ...] = LADDER) -> int:
    """The fastest tier a client capped at ``cap_period`` seconds may be in: the slowest ladder period not
    above it (0 for no cap)."""
    return max(i for i, p in enumerate(ladder) if p <= cap_period)


@dataclass(frozen=True, slots=True)
class TierPolicy:
    down_after: float = 1.0  # seconds behind without a break before one tier down
    up_after: float = 10.0  # seconds keeping up without a break before one tier up
    behind_bytes: int = 64 * 1024  # unsent bytes over which a watched client is behind
    clear_bytes: int = 16 * 1024  # unsent bytes at most for a client to be keeping up
    sweep_every: float = 0.25  # seconds between sweeps
    ladder: tuple[float, ...] = LADDER

    def __post_init__(self) -> None:
        if not (self.down_after > 0 and self.up_after > 0 and self.sweep_every > 0):
            raise ValueError("TierPolicy: down_after, up_after and sweep_every must be positive")
        if not 0 <= self.clear_bytes <= self.behind_bytes:
            raise ValueError("TierPolicy: need 0 <= clear_bytes <= behind_bytes")
        if not self.ladder or self.ladder[0] != 0 or list(self.ladder) != sorted(set(self.ladder)):
            raise ValueError("TierPolicy.ladder: increasing periods starting at 0 (every flush)")


@dataclass(frozen=True, slots=True)
class Move:
    key: int
    tier: int  # the tier it is in now
    down: bool


class _Client:
    __slots__ = ("cap", "floor", "tier", "behind_since", "clear_since", "fell")

    def __init__(self) -> None:
        self.cap = 0.0  # the client's own period (s), 0: none
        self.floor = 0
        self.tier = 0
        self.behind_since: float | None = None
        self.clear_since: float | None = None
        self.fell = False  # paused since the last sweep


# what a sweep asks the adapter about a watched client: (bytes unsent, paused), or None when it is gone
Backlog = Callable[[int], tuple[int, bool] | None]


class TierLadder:
    """Every client's cap and tier, keyed by the adapter's client id; the moves a sweep decides."""

    def __init__(self, policy: TierPolicy | None = None) -> None:
        self.policy = policy or TierPolicy()
        # key -> its state; None for a client never capped nor behind (most of them): the same as a new ``_Client``,
        # without one per connection
        self._clients: dict[int, _Client | None] = {}
        self._watched: set[int] = set()  # fell behind lately, or below its floor
        self.per_tier = [0] * len(self.policy.ladder)
        self.moves_down = 0
        self.moves_up = 0
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._clients)

    def join(self, key: int) -> None:
        if key not in self._clients:
            self._clients[key] = None
            self.per_tier[0] += 1

    def leave(self, key: int) -> None:
        if key in self._clients:
            c = self._clients.pop(key)
            self.per_tier[c.tier if c is not None else 0] -= 1
            self._watched.discard(key)

    def tier(self, key: int) -> int:
        c = self._clients.get(key)
        return c.tier if c is not None else 0

    def period(self, key: int) -> float:
        """Seconds between the client's flushes (0: every flush)."""
        c = self._clients.get(key)
        return 0.0 if c is None else max(c.cap, self.policy.ladder[c.tier])

    def rate_hz(self, key: int) -> float:
        """The cap in force, in updates per second per symbol (0: none)."""
        period = self.period(key)
        return 1.0 / period if period else 0.0

    def request(self, key: int, hz: float) -> None:
        """The client's own cap (``rate_problem`` checked first; 0: none). A client at its floor follows the new
        floor; one moved down for falling behind stays down, unless the new floor is slower still. A client not
        (or no longer) here is ignored."""
        c = self._state(key)
        if c is None:
            return
        demoted = c.tier > c.floor
        c.cap = 1.0 / hz if hz else 0.0
        c.floor = floor_of(c.cap, self.policy.ladder)
        self._set(key, c, max(c.floor, c.tier) if demoted else c.floor)

    def fell_behind(self, key: int) -> None:
        """The adapter paused writing to this client (its write buffer passed the high-water mark)."""
        c = self._state(key)
        if c is not None:
            c.fell = True
            self._watched.add(key)

    def _state(self, key: int) -> _Client | None:
        """The client's state, to change (made on first use); None when the client is not here."""
        if key not in self._clients:
            return None
        c = self._clients[key]
        if c is None:
            c = self._clients[key] = _Client()
        return c

    def due(self, now: float) -> bool:
        """Whether a sweep is due at ``now`` (seconds, monotonic)."""
        if now < self._next_sweep:
            return False
        self._next_sweep = now + self.policy.sweep_every
        return True

    def sweep(self, now: float, backlog: Backlog) -> list[Move]:
        """Look at every watched client (``backlog``) and move those the policy says; cost: watched clients only."""
        policy = self.policy
        bottom = len(policy.ladder) - 1
        moves: list[Move] = []
        for key in list(self._watched):
            c = self._clients.get(key)
            seen = backlog(key) if c is not None else None
            if c is None or seen is None:
                self._watched.discard(key)
                continue
            unsent, paused = seen
            if c.fell or paused or unsent > policy.behind_bytes:
                c.fell = False
                c.clear_since = None
                if c.behind_since is None:
                    c.behind_since = now
                elif now - c.behind_since >= policy.down_after and c.tier < bottom:
                    self._set(key, c, c.tier + 1)
                    self.moves_down += 1
                    c.behind_since = now
                    moves.append(Move(key, c.tier, True))
                continue
            c.behind_since = None
            if unsent > policy.clear_bytes:
                c.clear_since = None  # between the marks: neither clock runs
                continue
            if c.tier <= c.floor:
                self._watched.discard(key)  # caught up at its floor: nothing more to watch
                c.clear_since = None
                continue
            if c.clear_since is None:
                c.clear_since = now
            elif now - c.clear_since >= policy.up_after:
                self._set(key, c, c.tier - 1)
                self.moves_up += 1
                c.clear_since = now
                moves.append(Move(key, c.tier, False))
        return moves

    def _set(self, key: int, c: _Client, tier: int) -> None:
        self.per_tier[c.tier] -= 1
        self.per_tier[tier] += 1
        c.tier = tier
        if tier > c.floor:
            self._watched.add(key)


class Pacing:
    """Per hub slot: the flush period (ns, 0: every flush) and when it is next due. ``hold(now)`` once per flush
    says which slots sit this flush out; ``sent(slots)`` restarts the period of the slots just given frames."""

    def __init__(self) -> None:
        self.period: npt.NDArray[np.int64] = np.zeros(256, np.int64)
        self.next_due: npt.NDArray[np.int64] = np.zeros(256, np.int64)
        self.paced = 0  # slots with a period: none, and a flush pays nothing for pacing
        self._held: npt.NDArray[np.bool_] | None = None
        self._now = 0

    def assign(self, slot: int, period_ns: int) -> None:
        """Slot ``slot`` (-1: none yet, nothing to do) flushes at most once per ``period_ns``."""
        if slot < 0:
            return
        if slot >= len(self.period):
            n = max(2 * len(self.period), slot + 1)
            self.period = np.concatenate((self.period, np.zeros(n - len(self.period), np.int64)))
            self.next_due = np.concatenate((self.next_due, np.zeros(n - len(self.next_due), np.int64)))
        self.paced += int(period_ns > 0) - int(self.period[slot] > 0)
        self.period[slot] = period_ns
        self.next_due[slot] = min(int(self.next_due[slot]), self._now + period_ns)  # a faster tier applies now

    def hold(self, now_ns: int, window: tuple[int, int] | None = None) -> None:
        """This flush's slots not due (None: every slot is); with ``window`` (lo, hi), the slots outside it sit
        this flush out too (the flush of a large node is written window by window: ``Flushing._write``)."""
        self._now = now_ns
        held = self.next_due > now_ns if self.paced else None
        if window is not None:
            lo, hi = window
            outside = np.ones(len(self.period), np.bool_)
            outside[lo:hi] = False
            held = outside if held is None else held | outside
        self._held = held

    def due_edges(self, idx: npt.NDArray[np.int64], edge_slot: npt.NDArray[np.int64]
                  ) -> tuple[npt.NDArray[np.int64], bool]:
        """The owed edges ``idx`` whose subscriber is due this flush, and whether any were held back."""
        held = self._held
        if held is None:
            return idx, False
        keep = ~held[edge_slot[idx]]
        if keep.all():
            return idx, False
        return idx[keep], True

    def sent(self, slots: npt.NDArray[np.int64], starts: npt.NDArray[np.int64] | None = None) -> None:
        """The slots (``slots[starts]`` when given) were given frames this flush: next due a period from now."""
        if self.paced:
            if starts is not None:
                slots = slots[starts]
            self.next_due[slots] = self._now + self.period[slots]


NO_PACING = Pacing()  # never assigned: every slot is always due
