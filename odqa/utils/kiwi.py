"""One Kiwi (Korean morphological analyzer) per process and worker count: loading it takes ~1 s."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=2)
def get_kiwi(num_workers: int | None = None):
    """A shared ``kiwipiepy.Kiwi``; ``num_workers`` > 1 tokenizes lists of texts on that many threads
    (None: Kiwi's default, for short texts analysed one at a time)."""
    from kiwipiepy import Kiwi

    return Kiwi() if num_workers is None else Kiwi(num_workers=num_workers)
