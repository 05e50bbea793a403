"""Explanations kept in memory, so that a pick in the menus under an answer needs no model run.

Bounded by bytes (``why.kept_bytes``), not by count: an explanation's size grows with the
message (``PackedExplanation.nbytes``: ~6 KB at 40 tokens plus its text, far more with a raised
``model.max_tokens``). The least recently used go first; each one dropped to make room, and each
one too big to keep at all, counts in ``whymoji_why_kept_evictions_total``; the bytes held are
``whymoji_why_kept_bytes``. Memory only: nothing is ever written anywhere, and a restart forgets
everything (a message's explanation is then computed again; a typed text's cannot be).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from bot.explain.explanation import Explanation
from bot.explain.packed import PackedExplanation
from bot.metrics import Metrics

#: What an entry costs beyond its packed explanation: the ordered dict's node and the key
#: (a ``bot.interactions.picks.Subject``: a small frozen dataclass of four fields).
ENTRY_OVERHEAD = 300


class KeptExplanations:
    """``keep(key, explanation)``, ``get(key) -> Explanation | None``; least recently used out first."""

    def __init__(self, max_bytes: int, metrics: Metrics | None = None) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._entries: OrderedDict[Hashable, tuple[PackedExplanation, int]] = OrderedDict()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """What the kept explanations hold now (never more than ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def keep(self, key: Hashable, explanation: Explanation) -> bool:
        """Keep ``explanation`` under ``key`` (replacing what was there); False if it is too big."""
        self._drop(key)
        packed = PackedExplanation.pack(explanation)
        size = packed.nbytes + ENTRY_OVERHEAD
        if size > self.max_bytes:
            self._evicted()
            self._update_gauge()
            return False
        while self._bytes + size > self.max_bytes:
            self._drop(next(iter(self._entries)))
            self._evicted()
        self._entries[key] = (packed, size)
        self._bytes += size
        self._update_gauge()
        return True

    def get(self, key: Hashable) -> Explanation | None:
        """The explanation kept under ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0].unpack()

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]

    def _evicted(self) -> None:
        if self.metrics is not None:
            self.metrics.why_kept_evictions.inc()

    def _update_gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.why_kept_bytes.set(self._bytes)
