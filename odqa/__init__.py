"""odqa — open-domain question answering, Korean first.

Every piece is importable on its own; heavy dependencies (torch, transformers) load only
when the piece that needs them is first used.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "load_mrc_dataset": "odqa.data",
    "QAProcessor": "odqa.reader.processor",
    "postprocess_qa_predictions": "odqa.reader.postprocessing",
    "get_model": "odqa.reader.modeling",
    "QATrainer": "odqa.reader.trainer",
    "FreezeEmbeddingCallback": "odqa.reader.callbacks",
    "FreezeBackboneCallback": "odqa.reader.callbacks",
    "compute_metrics": "odqa.metrics",
    "offline_model_path": "odqa.offline",
    "load_reader": "odqa.reader.modeling",
    "Corpus": "odqa.retrieval.corpus",
    "load_corpus": "odqa.retrieval.corpus",
    "Hit": "odqa.retrieval.base",
    "get_retriever": "odqa.retrieval.registry",
    "load_retriever": "odqa.retrieval.registry",
    "retrieve_hits": "odqa.retrieval.table",
    "retrieve_table": "odqa.retrieval.table",
    "ODQAPipeline": "odqa.pipeline.pipeline",
    "ExtractiveReader": "odqa.reader.extractive",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'odqa' has no attribute {name!r}")
