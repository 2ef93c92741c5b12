"""One Kiwi (Korean morphological analyzer) per process and worker count: loading it takes ~1 s."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=2)
def get_kiwi(num_workers: int = 0):
    """A shared ``kiwipiepy.Kiwi``; ``num_workers`` > 1 tokenizes lists of texts on that many threads."""
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=num_workers)
