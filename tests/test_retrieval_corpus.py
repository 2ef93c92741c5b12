"""Corpus loaders, their error messages, duplicate merging and passage splitting."""
from __future__ import annotations

import json

import pytest

from odqa.errors import DataError
from odqa.retrieval.corpus import Corpus, context_id, load_corpus
from odqa.retrieval.splitting import split_corpus, window_spans


def test_wikipedia_documents_layout(tmp_path):
    path = tmp_path / "wikipedia_documents.json"
    path.write_text(json.dumps({"0": {"text": "서울은 수도이다.", "title": "서울", "document_id": 10},
                                "1": {"text": "부산은 항구이다.", "title": "부산", "document_id": 11}},
                               ensure_ascii=False), encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.ids == ["0", "1"] and corpus["1"].title == "부산" and corpus["1"].document_id == "11"


def test_jsonl_csv_and_datasets_folder_give_the_same_passages(tmp_path):
    rows = [{"id": "a", "title": "T1", "text": "첫째 문단"}, {"id": "b", "title": "T2", "text": "둘째 문단"}]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    csv_path = tmp_path / "c.csv"
    import pandas as pd

    pd.DataFrame(rows).to_csv(csv_path, index=False)
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    loaded = [load_corpus(p) for p in (jsonl, csv_path, tmp_path / "ds")]
    for corpus in loaded:
        assert [(p.id, p.title, p.text) for p in corpus] == [(r["id"], r["title"], r["text"]) for r in rows]


def test_mrc_contexts_are_deduplicated_with_stable_ids(squad_file):
    corpus = load_corpus(squad_file)
    payload = json.loads(squad_file.read_text(encoding="utf-8"))
    contexts = [p["context"] for a in payload["data"] for p in a["paragraphs"]]
    assert len(corpus) == len(set(contexts))
    assert corpus.ids == [context_id(c) for c in contexts]
    assert corpus[context_id(contexts[0])].title == payload["data"][0]["title"]


def test_duplicate_texts_are_merged_and_reported(caplog):
    corpus = Corpus.from_records([{"id": "x", "text": "같은 글"}, {"id": "y", "text": "다른 글"},
                                  {"id": "z", "text": "같은 글"}], source="mem")
    assert corpus.ids == ["x", "y"] and corpus.merged == {"z": "x"}
    assert corpus["z"].id == "x" and "z" in corpus
    assert "merged" in caplog.text and "'z'" in caplog.text


@pytest.mark.parametrize("rows,needle", [
    ([{"id": "p7", "text": "  "}], "passage id 'p7' (row 0) has an empty"),
    ([{"id": "p1", "text": "가"}, {"id": "p1", "text": "나"}], "'p1' appears twice"),
    ([{"id": "", "text": "가"}], "row 0 has an empty id"),
])
def test_bad_rows_name_the_row(rows, needle):
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Corpus.from_records(rows, source="c.jsonl")


def test_loader_errors_name_file_and_fix(tmp_path):
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"id": "a", "text": "ok"}\n{"id": oops}\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad.jsonl: line 2 is not valid JSON"):
        load_corpus(bad_line)
    no_text = tmp_path / "mrc_rows.jsonl"
    no_text.write_text('{"id": "a", "context": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="has no 'text' field.*MRC dataset"):
        load_corpus(no_text)
    no_col = tmp_path / "c.csv"
    no_col.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="c.csv: header.*no 'text' column"):
        load_corpus(no_col)
    wiki = tmp_path / "w.json"
    wiki.write_text(json.dumps({"0": {"title": "t"}}), encoding="utf-8")
    with pytest.raises(DataError, match="entry '0' has no 'text'"):
        load_corpus(wiki)
    with pytest.raises(DataError, match="file not found"):
        load_corpus(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="unknown corpus format '.txt'"):
        (tmp_path / "c.txt").write_text("x")
        load_corpus(tmp_path / "c.txt")
    broken = tmp_path / "squad.json"
    broken.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"qas": []}]}]}), encoding="utf-8")
    with pytest.raises(DataError, match="article 0 .* paragraph 0 has no 'context'"):
        load_corpus(broken)


@pytest.mark.parametrize("unit,size,overlap", [("chars", 40, 10), ("words", 6, 2), ("chars", 25, 0)])
def test_split_keeps_document_mapping_and_offsets(unit, size, overlap):
    text = "한국어 문서는 길 수 있다. " * 8 + "마지막 문장은 여기서 끝난다."
    corpus = Corpus.from_records([{"id": "d1", "title": "제목", "text": text, "document_id": "doc-1"},
                                  {"id": "d2", "title": "짧음", "text": "짧은 글"}])
    split = split_corpus(corpus, size=size, overlap=overlap, unit=unit)
    parts = [p for p in split if p.document_id == "doc-1"]
    assert len(parts) > 1 and split["d2"].text == "짧은 글"
    for k, p in enumerate(parts):
        assert p.id == f"d1#{k}" and p.title == "제목"
        assert text[p.start:p.start + len(p.text)] == p.text
    # windows cover the whole document, in order
    assert parts[0].start == 0 and parts[-1].start + len(parts[-1].text) == len(text.rstrip())
    assert all(a.start < b.start for a, b in zip(parts, parts[1:]))
    if overlap and unit == "words":
        assert parts[0].text.split()[-overlap:] == parts[1].text.split()[:overlap]


def test_window_spans_rejects_bad_sizes():
    from odqa.errors import ConfigError

    with pytest.raises(ConfigError, match="size > overlap"):
        window_spans("abc", 5, 5)
