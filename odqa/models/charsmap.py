"""Build a SentencePiece ``precompiled_charsmap`` from a per-code-point normalization map.

Why: the engine we convert normalizes text with its own code point → replacement table. The fast
tokenizer must do exactly the same, and ``tokenizers`` already has the normalizer that SentencePiece
models use (``normalizers.Precompiled``); it only needs the table in SentencePiece's binary form:

    u32 trie size in bytes | darts-clone double-array trie (u32 units) | replacements, each NUL-ended

The trie maps the UTF-8 bytes of a code point to the offset of its replacement. A darts-clone unit
packs a byte label (bits 0-7), a has-leaf flag (bit 8) and an XOR offset to its children (bits 10-31,
bit 9 = offset scaled by 256); a leaf unit holds the value with bit 31 set. The child of a node at
position ``p`` for byte ``c`` sits at ``p ^ offset ^ c``; the value of a key sits at ``p ^ offset``
(label 0). Each node's children get their own base (``p ^ offset``), so no walk can land on another
node's child.
"""
from __future__ import annotations

import struct
from typing import Mapping, Sequence

LEAF_FLAG = 1 << 8
VALUE_FLAG = 1 << 31
MAX_PLAIN_OFFSET = 1 << 21


def _encode_offset(offset: int) -> int:
    if offset < MAX_PLAIN_OFFSET:
        return offset << 10
    if offset % 256 or offset >= 1 << 29:
        raise ValueError(f"double-array offset {offset} cannot be encoded.")
    return (offset << 2) | (1 << 9)


def build_double_array(keys: Sequence[bytes], values: Sequence[int]) -> list[int]:
    """A darts-clone double array for distinct, non-empty ``keys`` without NUL bytes."""
    trie: dict = {}
    for key, value in zip(keys, values):
        if not key or b"\0" in key:
            raise ValueError(f"keys must be non-empty and NUL-free (got {key!r}).")
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        if None in node:
            raise ValueError(f"duplicate key {key!r}.")
        node[None] = value  # the terminal, stored at label 0

    units: list[int] = [0]
    used = bytearray(1)
    used[0] = 1  # the root
    used_bases: set[int] = set()
    search_from = 1

    def ensure(size: int) -> None:
        if size > len(used):
            grow = size - len(used)
            used.extend(bytearray(grow))
            units.extend([0] * grow)

    queue = [(0, trie)]
    while queue:
        position, node = queue.pop()
        labels = [0 if label is None else label for label in node]
        base = search_from
        while True:
            ensure(base + 256)
            if base not in used_bases and all(not used[base ^ c] for c in labels):
                break
            base += 1
        used_bases.add(base)
        while search_from < len(used) and used[search_from]:
            search_from += 1
        units[position] |= _encode_offset(position ^ base)
        for label, child in node.items():
            child_pos = base ^ (0 if label is None else label)
            used[child_pos] = 1
            if label is None:
                units[child_pos] = child | VALUE_FLAG
                units[position] |= LEAF_FLAG
            else:
                units[child_pos] = label
                queue.append((child_pos, child))
    last = max(i for i, flag in enumerate(used) if flag)
    return units[:last + 1]


def precompiled_charsmap(mapping: Mapping[int, Sequence[int]]) -> bytes:
    """The SentencePiece charsmap for ``{code point: replacement code points}`` (an empty replacement deletes)."""
    keys, values, normalized = [], [], bytearray()
    for cp in sorted(mapping):
        keys.append(chr(cp).encode("utf-8"))
        values.append(len(normalized))
        normalized += "".join(chr(c) for c in mapping[cp]).encode("utf-8") + b"\0"
    units = build_double_array(keys, values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)
