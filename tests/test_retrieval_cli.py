"""`odqa index`, `odqa retrieve`, `odqa eval-retrieval` end to end."""
from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

from odqa.cli import main



def sample_or_tiny(squad_file):
    from tests.conftest import SAMPLE_DIR

    sample = SAMPLE_DIR / "validation.json"
    return sample if sample.exists() else squad_file


def test_index_retrieve_eval_round_trip(tmp_path, squad_file, capsys):
    dataset = sample_or_tiny(squad_file)
    assert main(["index", "--corpus", str(dataset), "--retriever", "bm25", "--tokenizer", "bigram",
                 "--output", str(tmp_path / "idx")]) == 0
    assert json.loads(capsys.readouterr().out)["passages"] > 0
    assert main(["retrieve", "--index", str(tmp_path / "idx"), "--questions", str(dataset), "--top_k", "2",
                 "--output", str(tmp_path / "r.csv")]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table.columns) == ["id", "question", "passage_ids", "scores", "contexts"]
    assert all(len(json.loads(x)) == 2 for x in table["passage_ids"])
    capsys.readouterr()
    assert main(["eval-retrieval", "--dataset", str(dataset), "--tokenizer", "bigram", "--top_k", "1", "2",
                 "--output", str(tmp_path / "m.json")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == json.loads((tmp_path / "m.json").read_text())
    assert 0 < metrics["recall@1"] <= metrics["recall@2"] <= 100
    assert metrics["mrr@2"] <= metrics["recall@2"] and metrics["questions"] == len(table)
    # the saved index evaluates the same as a fresh build with the same options
    assert main(["eval-retrieval", "--dataset", str(dataset), "--index", str(tmp_path / "idx"),
                 "--top_k", "1", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["recall@2"] == metrics["recall@2"]
    # replay the CSV as a retriever
    assert main(["eval-retrieval", "--dataset", str(dataset), "--retriever", "get_retrieved_df",
                 "--csv", str(tmp_path / "r.csv"), "--corpus", str(dataset), "--top_k", "1", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["recall@2"] == metrics["recall@2"]


def test_cli_errors_are_messages_not_tracebacks(tmp_path, squad_file, capsys):
    assert main(["retrieve", "--index", str(tmp_path / "none"), "--questions", str(squad_file),
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "index directory not found" in capsys.readouterr().err
    assert main(["index", "--corpus", str(squad_file), "--tokenizer", "nope", "--output", str(tmp_path / "i")]) == 2
    assert "unknown tokenizer 'nope'" in capsys.readouterr().err
    assert main(["index", "--corpus", str(tmp_path / "missing.jsonl"), "--tokenizer", "bigram",
                 "--output", str(tmp_path / "i")]) == 2
    assert "missing.jsonl: corpus file not found" in capsys.readouterr().err
    # an existing index is never replaced silently
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "meta.json").write_text("{}")
    assert main(["index", "--corpus", str(squad_file), "--tokenizer", "bigram", "--output", str(tmp_path / "kept")]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "kept" / "meta.json").read_text() == "{}"
    assert main(["index", "--corpus", str(squad_file), "--tokenizer", "bigram", "--output", str(tmp_path / "kept"),
                 "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["passages"] > 0 and (tmp_path / "kept" / "meta.json").read_text() != "{}"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert main(["eval-retrieval", "--dataset", str(squad_file), "--retriever", "es", "--es_url", url,
                 "--es_max_retries", "0"]) == 2
    assert "cannot reach Elasticsearch" in capsys.readouterr().err


def test_default_hybrid_is_the_measured_choice(tmp_path, squad_file, capsys):
    from odqa.retrieval.hybrid import DEFAULT_FUSION, DEFAULT_FUSION_WEIGHT, DEFAULT_HYBRID_TOKENIZERS
    from odqa.retrieval.registry import load_retriever

    assert main(["index", "--corpus", str(squad_file), "--retriever", "hybrid", "--output", str(tmp_path / "h")]) == 0
    hybrid = load_retriever(tmp_path / "h")
    assert (hybrid.fusion, hybrid.weight) == (DEFAULT_FUSION, DEFAULT_FUSION_WEIGHT) == ("weighted", 0.9)
    assert [p.name for p in hybrid.parts] == ["bm25", "tfidf"]
    assert [p.params()["tokenizer"] for p in hybrid.parts] == list(DEFAULT_HYBRID_TOKENIZERS)


@pytest.mark.integration
def test_default_korean_configuration_beats_lucene_nori(korquad_half):
    """The issue's target on the KorQuAD dev half: above Lucene 8.7 + Nori at every cutoff."""
    from odqa.retrieval.bm25 import BM25Retriever
    from odqa.retrieval.corpus import Corpus
    from odqa.retrieval.evaluation import evaluate_retriever, questions_with_gold
    from odqa.data.loading import read_mrc_rows

    examples = read_mrc_rows(korquad_half)
    corpus = Corpus.from_mrc_dataset(examples)
    retriever = BM25Retriever().index(corpus)
    m = evaluate_retriever(retriever, questions_with_gold(examples, corpus), [1, 5, 20])
    assert m["questions_with_gold_passage"] == 3316
    assert m["recall@1"] >= 92.5 and m["recall@5"] >= 99.2 and m["recall@20"] >= 99.85 and m["mrr@20"] >= 95.5


def test_retrieve_writes_trec_and_jsonl_runs_that_agree_with_the_csv(tmp_path, squad_file, capsys):
    """Pyserini-style run files: the same ranking as the CSV, readable by trec_eval/ranx (6 columns)."""
    dataset = sample_or_tiny(squad_file)
    assert main(["index", "--corpus", str(dataset), "--tokenizer", "bigram", "--output", str(tmp_path / "idx")]) == 0
    for name in ("r.csv", "r.trec", "r.jsonl"):
        assert main(["retrieve", "--index", str(tmp_path / "idx"), "--questions", str(dataset), "--top_k", "3",
                     "--output", str(tmp_path / name)]) == 0
    capsys.readouterr()
    table = pd.read_csv(tmp_path / "r.csv")
    expected = [(qid, pid, rank) for qid, pids in zip(table["id"].astype(str), table["passage_ids"])
                for rank, pid in enumerate(json.loads(pids), 1)]
    trec = [line.split() for line in (tmp_path / "r.trec").read_text(encoding="utf-8").splitlines()]
    assert all(len(row) == 6 and row[1] == "Q0" and row[5] == "odqa-bm25" for row in trec)
    assert [(row[0], row[2], int(row[3])) for row in trec] == expected
    scores = [float(row[4]) for row in trec]
    assert all(a >= b for a, b, row_a, row_b in zip(scores, scores[1:], trec, trec[1:]) if row_a[0] == row_b[0])
    runs = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], h["passage_id"], h["rank"]) for r in runs for h in r["hits"]] == expected
