"""The heap is frozen at each test start, and what the last test froze is let go (a wave of users never piles up)."""

from __future__ import annotations

import gc
import weakref

from plugins.metrics import heap_freeze


class _Node:
    """An object in a reference cycle: only the garbage collector frees it."""


def test_what_a_test_start_froze_is_collected_at_the_next_start() -> None:
    node = _Node()
    node.itself = node
    alive = weakref.ref(node)
    threshold = gc.get_threshold()
    try:
        heap_freeze.on_test_start()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (heap_freeze.GEN0_THRESHOLD, *threshold[1:])  # young objects: collected less often
        del node
        gc.collect()
        assert alive() is not None  # frozen: no collection walks it
        heap_freeze.on_test_start()
        assert alive() is None  # let go and collected before the next test freezes the heap again
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
