"""The import graph: lower rooms never import higher ones, and moved modules keep their old names."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ODQA = Path(__file__).resolve().parents[1] / "odqa"
# room -> rooms above it that it must not import (runtime < reader, dense < retrieval < pipeline < serve)
FORBIDDEN = {"runtime": ("odqa.reader", "odqa.dense", "odqa.retrieval", "odqa.pipeline", "odqa.serve"),
             "reader": ("odqa.pipeline", "odqa.serve"),
             "dense": ("odqa.pipeline", "odqa.serve"),
             "metrics": ("odqa.serve",)}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_no_room_imports_a_room_above_it(room):
    wrong = sorted(f"{path.relative_to(ODQA)} imports {name}" for path in (ODQA / room).rglob("*.py")
                   for name in imported_modules(path) if name.startswith(FORBIDDEN[room]))
    assert not wrong, wrong


@pytest.mark.parametrize("old, new, names", [
    ("odqa.pipeline.reading", "odqa.reader.extractive", ("ExtractiveReader", "ReadOptions", "DEFAULT_TOP_K")),
    ("odqa.pipeline.answers", "odqa.reader.answers", ("Answer", "PassageToRead")),
    ("odqa.pipeline.abstention", "odqa.reader.abstention", ("apply_threshold", "THRESHOLD_FILE", "resolve_threshold")),
    ("odqa.pipeline.quantization", "odqa.runtime.quantization", ("StaticInt8Encoder", "quantize_reader",
                                                                 "QUANTIZE_CHOICES")),
])
def test_moved_modules_keep_their_old_names(old, new, names):
    before, after = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(before, name) is getattr(after, name)
    import odqa.pipeline

    assert odqa.pipeline.ExtractiveReader is importlib.import_module("odqa.reader.extractive").ExtractiveReader
