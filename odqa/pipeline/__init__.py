"""End-to-end ODQA: retrieve passages, read them, return answers (notebook API and `odqa infer`).

    from odqa.pipeline import ODQAPipeline
    pipe = ODQAPipeline.from_pretrained("models/sample_bm25")   # the shipped reader, e5-small-korquad
    pipe("경복궁이 처음 지어진 해는?", top_k=5)
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ODQAPipeline": "odqa.pipeline.pipeline",
    "PipelineResult": "odqa.pipeline.pipeline",
    "passages_from_hits": "odqa.pipeline.pipeline",
    "passages_from_table": "odqa.pipeline.pipeline",
    "ExtractiveReader": "odqa.reader.extractive",
    "ReadOptions": "odqa.reader.extractive",
    "READ_MODES": "odqa.reader.extractive",
    "Answer": "odqa.reader.answers",
    "PassageToRead": "odqa.reader.answers",
    "quantize_reader": "odqa.runtime.quantization",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'odqa.pipeline' has no attribute {name!r}")
