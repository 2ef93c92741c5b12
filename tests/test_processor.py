"""QAProcessor windows, labels and offsets; post-processing; check-data round trips."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import PARAGRAPHS, all_texts, wordpiece_tokenizer
from odqa.errors import ConfigError
from odqa.reader.check_data import round_trip
from odqa.reader.postprocessing import postprocess_qa_predictions
from odqa.reader.processor import QAProcessor, label_window


def test_label_window_shared_offsets_one_syllable():
    # "봄은": uncased BERT gives 봄 as three jamo tokens sharing offsets (0, 1)
    offsets = [None, None, (0, 1), (0, 1), (0, 1), (1, 2), None]
    assert label_window(offsets, 0, 1) == (2, 4)  # first token of 봄 .. last token of 봄
    assert label_window(offsets, 1, 2) == (5, 5)
    assert label_window(offsets, 5, 6) == (0, 0)  # outside the window → CLS


@pytest.fixture
def long_examples(squad_file):
    from odqa.data import load_mrc_dataset

    return load_mrc_dataset(squad_file, require_answers=True)


def test_windows_labels_and_offsets(char_tokenizer_dir, long_examples):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(char_tokenizer_dir)
    proc = QAProcessor(tok, max_seq_length=48, doc_stride=16, max_query_length=12)
    feats = proc.get_eval_features(long_examples)
    assert len(feats) > len(long_examples)  # long contexts need several windows
    examples = {e["id"]: e for e in long_examples}
    labelled = set()
    for f in feats:
        assert len(f["input_ids"]) <= 48
        # question truncated to max_query_length tokens: [CLS] q [SEP] → first SEP at ≤ 13
        assert f["input_ids"].index(tok.sep_token_id) <= 13
        s, e = f["start_positions"], f["end_positions"]
        if s == 0:
            continue
        ex = examples[f["example_id"]]
        text = ex["context"][f["offset_mapping"][s][0]:f["offset_mapping"][e][1]]
        assert text == ex["answers"]["text"][0]
        labelled.add(f["example_id"])
    assert labelled == set(examples)  # every answer is wholly inside at least one window


def test_round_trip_is_exact_with_char_tokenizer(char_tokenizer_dir, long_examples):
    from transformers import AutoTokenizer

    proc = QAProcessor(AutoTokenizer.from_pretrained(char_tokenizer_dir), max_seq_length=48, doc_stride=16,
                       max_query_length=12)
    report, predictions = round_trip(proc, long_examples)
    assert report["round_trip_exact_match"] == 100.0
    assert all(predictions[e["id"]] == e["answers"]["text"][0] for e in long_examples)


def test_nfd_tokenizer_offsets_land_on_original_syllables(long_examples):
    """Uncased-BERT-style normalization (NFD → jamo, lowercase): answers still cut from NFC text."""
    tok = wordpiece_tokenizer(all_texts(), vocab_size=90, nfd_lowercase=True)  # ~ jamo alphabet
    enc = tok("봄", "봄은 첫 계절", return_offsets_mapping=True)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert any(len(p.strip("#")) == 1 and "\u1100" <= p.strip("#")[0] <= "\u11ff" for p in pieces), pieces
    proc = QAProcessor(tok, max_seq_length=64, doc_stride=16, max_query_length=16, max_answer_length=40)
    feats = proc.get_eval_features(long_examples)
    for f in feats:
        for off in f["offset_mapping"]:
            if off is not None:
                assert 0 <= off[0] < off[1]
        assert f["start_positions"] <= f["end_positions"]
    report, predictions = round_trip(proc, long_examples)
    spring = next(e for e in long_examples if e["answers"]["text"][0] == "봄")
    assert predictions[spring["id"]] == "봄"
    for e in long_examples:  # predictions are substrings of the ORIGINAL (NFC) context
        assert predictions[e["id"]] in e["context"]


def test_whole_word_tokenizer_loses_particle_boundaries(long_examples):
    tok = wordpiece_tokenizer(all_texts() * 20, vocab_size=2000)  # big vocab: 서울을 is one token
    proc = QAProcessor(tok, max_seq_length=64, doc_stride=16, max_query_length=16, morpheme_boundaries=False)
    report, _ = round_trip(proc, long_examples)
    assert report["round_trip_exact_match"] < 100.0
    assert report["lost_by_cause"]["boundary_inside_token"]["count"] >= 1


def test_postprocessing_best_span_across_windows():
    examples = [{"id": "a", "context": "abcdefghij"}]
    features = {"example_id": ["a", "a"],
                "offset_mapping": [[None, (0, 1), (1, 2), (2, 3), None], [None, (5, 6), (6, 7), (7, 8), None]]}
    start = np.array([[9, 1, 2, 0, 9], [9, 0, 5, 0, 9]], dtype=float)
    end = np.array([[9, 0, 1, 2, 9], [9, 0, 0, 5, 9]], dtype=float)
    preds, nbest = postprocess_qa_predictions(examples, _Feats(features), (start, end), n_best_size=5,
                                              max_answer_length=3)
    assert preds["a"] == "gh"  # second window: start 6, end 8 (score 10) beats the first (4)
    best = nbest["a"][0]
    assert best["offsets"] == [6, 8] and best["score"] == 10.0 - 18.0  # minus the window's no-answer score (9 + 9)
    assert sum(c["probability"] for c in nbest["a"]) == pytest.approx(1.0)
    # max_answer_length in tokens: a 3-token limit rejects the 4-token span
    preds, _ = postprocess_qa_predictions(examples, _Feats(features), (start, end), n_best_size=5,
                                          max_answer_length=1)
    assert len(preds["a"]) == 1


class _Feats(dict):
    def __len__(self):
        return len(self["example_id"])


def test_processor_option_errors(char_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(char_tokenizer_dir)
    with pytest.raises(ConfigError, match="doc_stride"):
        QAProcessor(tok, max_seq_length=64, doc_stride=60)
    with pytest.raises(ConfigError, match="unknown QAProcessor option"):
        QAProcessor(tok, max_seq_len=64)


def test_check_data_cli(char_tokenizer_dir, squad_file, tmp_path):
    out = subprocess.run([sys.executable, "-m", "odqa", "check-data", "--dataset", str(squad_file), "--model",
                          str(char_tokenizer_dir), "--max_seq_length", "48", "--doc_stride", "16",
                          "--max_query_length", "12", "--output_dir", str(tmp_path / "cd")],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    n = sum(len(qas) for _, _, qas in PARAGRAPHS)
    assert report["examples"] == n and report["features"] > n
    assert report["round_trip_exact_match"] == 100.0 and report["answers_lost"] == 0
    preds = json.loads((tmp_path / "cd" / "predictions.json").read_text(encoding="utf-8"))
    assert len(preds) == n
    bad = subprocess.run([sys.executable, "-m", "odqa", "check-data", "--dataset", str(squad_file), "--model",
                          str(tmp_path / "no_such_model")], capture_output=True, text=True)
    assert bad.returncode == 2 and "folder not found" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.integration
def test_char_tokenizer_round_trip_on_korquad(korquad_half, tmp_path):
    from odqa.data import load_mrc_dataset
    from odqa.reader.tokenizer import build_char_tokenizer

    ds = load_mrc_dataset(korquad_half, require_answers=True)
    tok = build_char_tokenizer(list(set(ds["context"])) + list(ds["question"]))
    report, _ = round_trip(QAProcessor(tok), ds)
    assert report["round_trip_exact_match"] >= 99.5


@pytest.mark.parametrize("command", ["train-mrc", "infer", "check-data"])
def test_window_options_one_spelling_with_the_old_ones_as_aliases(command):
    """train-mrc, infer and check-data share one declaration of the window options: both spellings of each
    reach the same field, and the processor gets the same WindowConfig."""
    from odqa.pipeline.cli import InferReaderArguments
    from odqa.reader.check_data import CheckDataArguments
    from odqa.reader.processor import WindowArguments, WindowConfig
    from odqa.reader.train import ReaderDataArguments
    from odqa.utils.args import parse_cli

    cls, required = {"train-mrc": (ReaderDataArguments, []), "infer": (InferReaderArguments, ["--model", "m"]),
                     "check-data": (CheckDataArguments, ["--dataset", "d", "--model", "m"])}[command]
    assert issubclass(cls, WindowArguments)
    new = ["--max_seq_len", "96", "--doc_stride", "24", "--max_query_len", "20", "--max_ans_len", "7",
           "--morpheme_boundaries", "false"]
    old = ["--max_seq_length", "96", "--stride_len", "24", "--max_query_length", "20", "--max_answer_length", "7",
           "--morpheme_boundaries", "false"]
    (a,) = parse_cli([cls], required + new, prog=command, description="")
    (b,) = parse_cli([cls], required + old, prog=command, description="")
    expected = WindowConfig(max_seq_length=96, doc_stride=24, max_query_length=20, max_answer_length=7,
                            morpheme_boundaries=False)
    assert a.window_config() == b.window_config() == expected
    (default,) = parse_cli([cls], required, prog=command, description="")
    assert default.window_config() == WindowConfig()
