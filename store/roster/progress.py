"""What both imports share while writing: progress reports and batches of rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
ProgressCallback = Callable[[int], None]

BATCH_SIZE = 1000  # rows per INSERT/UPDATE statement batch


class Progress:
    """Reports rows processed to an optional callback (tqdm's `update` fits)."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.remaining = total

    def advance(self, count: int) -> None:
        """Report `count` more rows processed."""
        count = min(count, self.remaining)
        if count > 0:
            self.remaining -= count
            if self.callback is not None:
                self.callback(count)

    def finish(self) -> None:
        """Report every row not yet reported."""
        self.advance(self.remaining)


def batches(items: list[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
