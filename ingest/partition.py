"""Symbol partitions (pure): which ingest process owns which symbols.

One busy ticker must not starve the rest, so ingest can run as several processes, each applying only its
partition's symbols. The hottest symbols get partitions of their own (in the order given); every other
symbol goes to one of the remaining partitions by a stable hash of its ticker (CRC-32, the same in every
process and every run). Every process still reads and sequences the whole feed (MoldUDP64 sequencing and
gap recovery are per session, not per symbol) but decodes and applies only its own symbols' messages: a
message of another partition costs one byte lookup.

The batched path filters undecoded blocks the same way (``PartitionFilter.keep_offsets``): after framing,
before the field decode, from the type byte and the locate of each message, so a worker of N partitions
decodes and applies about 1/N of the feed; directory entries are decoded (rare: the start of day) to learn
their partition, in message order, exactly as ``keep`` and ``ingest.packets.decode_blocks`` do.

The map is configuration: ``--partitions N --partition K --hot TSLA,NVDA`` or a JSON file
``{"partitions": 4, "hot": ["TSLA", "NVDA"]}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vocab.partition import crc32_partition

from .itch import decode as itch_decode
from .messages import Message, StockDirectory

DEFAULT_HOT = ("TSLA", "NVDA", "AAPL")
_DIRECTORY, _SYSTEM_EVENT = ord("R"), ord("S")
_DIRECTORY_SIZE = 39


class PartitionMap:
    def __init__(self, partitions: int, hot: Sequence[str] = ()) -> None:
        hot = [h.strip().upper() for h in hot if h.strip()]
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        if len(set(hot)) != len(hot):
            raise ValueError(f"a hot symbol is listed twice: {hot}")
        if hot and len(hot) >= partitions:
            raise ValueError(f"{len(hot)} hot symbols need at least {len(hot) + 1} partitions "
                             "(one each, and one or more for everything else)")
        self.partitions = partitions
        self.hot = {sym: i for i, sym in enumerate(hot)}

    @classmethod
    def from_file(cls, path: Path) -> PartitionMap:
        spec = json.loads(path.read_text())
        return cls(int(spec["partitions"]), spec.get("hot", []))

    @classmethod
    def default(cls, partitions: int) -> PartitionMap:
        """What the demo uses: the hottest names alone, as many as leave half the partitions for the rest."""
        return cls(partitions, DEFAULT_HOT[: max(0, min(len(DEFAULT_HOT), partitions // 2))])

    def partition_of(self, symbol: str) -> int:
        own = self.hot.get(symbol)
        if own is not None:
            return own
        shared = self.partitions - len(self.hot)
        return len(self.hot) + crc32_partition(symbol, shared)

    def describe(self) -> str:
        parts = [f"{i}: {sym}" for sym, i in self.hot.items()]
        rest = range(len(self.hot), self.partitions)
        parts.append(f"{rest.start}..{rest.stop - 1}: all other symbols by CRC-32" if len(rest) > 1
                     else f"{rest.start}: all other symbols")
        return "; ".join(parts)


class PartitionFilter:
    """The accept mask of one partition, learnt from the stock directory as it arrives."""

    def __init__(self, pmap: PartitionMap, partition: int) -> None:
        if not 0 <= partition < pmap.partitions:
            raise ValueError(f"partition must be in 0..{pmap.partitions - 1}")
        self.map = pmap
        self.partition = partition
        # 1 = this partition applies the locate's messages; unknown locates (no directory yet) are refused
        self.accept = bytearray(65_536)
        self.accept[0] = 1  # locate 0 is the market's (system events, circuit breakers): every partition's

    def learn(self, locate: int, symbol: str) -> bool:
        if locate == 0:
            return False  # not a stock: a directory entry cannot take the market's locate
        mine = self.map.partition_of(symbol) == self.partition
        self.accept[locate] = 1 if mine else 0
        return mine

    def keep(self, messages: Sequence[Message]) -> list[Message]:
        """This partition's share of decoded messages (e.g. a snapshot, which holds every symbol), learning
        from the directory entries among them as the live path does; system-wide messages (locate 0) stay."""
        kept: list[Message] = []
        for m in messages:
            if isinstance(m, StockDirectory):
                if self.learn(m.locate, m.stock):
                    kept.append(m)
            elif m.locate == 0 or self.accept[m.locate]:
                kept.append(m)
        return kept

    def keep_offsets(self, buf: npt.NDArray[np.uint8],
                     offsets: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
        """This partition's share of framed messages (``ingest.batch.frame``'s offsets into ``buf``, each
        message's type byte at its offset), in order, and how many were another partition's.

        The same decisions as ``keep`` on the decoded messages: a system event (S) is every partition's, a
        directory entry (R) is kept if it names one of this partition's symbols and teaches the filter its
        locate from there on, any other message is kept if its locate is accepted at that point."""
        if not offsets.shape[0]:
            return offsets, 0
        kind = buf[offsets]
        locate = (buf[offsets + 1].astype(np.int64) << 8) | buf[offsets + 2]
        accept = np.frombuffer(self.accept, np.uint8)  # a live view: ``learn`` below moves it
        system = kind == _SYSTEM_EVENT
        directory = np.flatnonzero(kind == _DIRECTORY).tolist()
        if not directory:  # the steady state: one gather
            keep = (accept[locate] != 0) | system
        else:  # the start of day: each entry decides for its locate's later messages, in order
            keep = np.empty(offsets.shape[0], np.bool_)
            start = 0
            data = buf.data
            for j in directory:
                keep[start:j] = (accept[locate[start:j]] != 0) | system[start:j]
                m = itch_decode(data, int(offsets[j]), _DIRECTORY_SIZE)
                assert isinstance(m, StockDirectory)
                keep[j] = self.learn(m.locate, m.stock)
                start = j + 1
            keep[start:] = (accept[locate[start:]] != 0) | system[start:]
        kept = offsets[keep]
        return kept, int(offsets.shape[0] - kept.shape[0])
