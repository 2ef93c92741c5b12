"""When odqa shows progress bars: the CLI always (unless --quiet), library calls only for long work.

A notebook that asks one question should see its answer, not three progress bars; a script that
reads 5,000 questions wants to know how far it is. ``show_progress`` everywhere is ``True`` (always),
``False`` (never) or ``None`` (automatic: only when there are at least ``AUTO_PROGRESS_MIN_ITEMS``
items of work).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

AUTO_PROGRESS_MIN_ITEMS = 200


def wants_progress(show_progress: bool | None, items: int, min_items: int = AUTO_PROGRESS_MIN_ITEMS) -> bool:
    """Whether to draw a bar over ``items`` units of work under the ``show_progress`` policy."""
    if show_progress is None:
        return items >= min_items
    return bool(show_progress) and items > 1


@contextlib.contextmanager
def datasets_progress(enabled: bool) -> Iterator[None]:
    """``datasets``' own bars (``Dataset.map``) on or off for the duration, then as they were."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    if was_enabled and not enabled:
        ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            ds_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """No "Loading weights" bar from ``transformers`` while a model loads, then as it was.

    Loading a reader takes a second: a bar for it is noise in a notebook and in a server log (the rule
    above: library calls show bars only for long work). Warnings about missing or unexpected weights
    still print: they are logged, not drawn.
    """
    from transformers.utils import logging as tf_logging

    was_enabled = tf_logging.is_progress_bar_enabled()
    if was_enabled:
        tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            tf_logging.enable_progress_bar()
