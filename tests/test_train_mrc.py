"""A short end-to-end `train-mrc` run on a tiny BERT, through the CLI entry point."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, squad_payload
from tests.helpers_models import save_tiny_bert


@pytest.fixture
def tiny_encoder(tmp_path):
    return save_tiny_bert(tmp_path / "encoder", vocab_size=200)


def test_train_mrc_end_to_end(tiny_encoder, squad_file, tmp_path):
    from odqa.reader.modeling import load_reader
    from odqa.reader.train import main

    out = tmp_path / "reader"
    rc = main(["--model", str(tiny_encoder), "--train_dataset", str(squad_file), "--eval_dataset", str(squad_file),
               "--output_dir", str(out), "--num_train_epochs", "2", "--max_seq_len", "64", "--doc_stride", "16",
               "--max_query_length", "16", "--max_ans_len", "20", "--head", "cnn", "--freeze_type", "embedding",
               "--freeze_epoch", "1", "--evaluation_strategy", "epoch", "--save_total_limit", "1",
               "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--label_smoothing_factor", "0.1",
               "--description", "unit test run"])
    assert rc == 0
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    assert info["description"] == "unit test run"
    assert {"eval_loss", "eval_exact_match", "eval_f1"} <= set(info["results"]["eval"])
    n_questions = sum(len(p["qas"]) for a in squad_payload()["data"] for p in a["paragraphs"])
    predictions = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    assert len(predictions) == n_questions
    nbest = json.loads((out / "nbest_predictions.json").read_text(encoding="utf-8"))
    first = next(iter(nbest.values()))[0]
    assert {"text", "start_logit", "end_logit", "probability", "offsets"} <= set(first)
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert 1 <= len(checkpoints) <= 2  # limit 1, plus the protected best
    for directory in (out, *(out / c for c in checkpoints)):  # nothing pickled: training arguments as JSON
        assert not (directory / "training_args.bin").exists()
        assert json.loads((directory / "training_args.json").read_text(encoding="utf-8"))["output_dir"] == str(out)
    reader = load_reader(str(out))
    assert reader.config.odqa_head == "cnn" and reader.config.label_smoothing_factor == pytest.approx(0.1)


def test_train_mrc_help_and_bad_options(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "train_mrc_v2.py"), "--help"], capture_output=True, text=True,
                         check=True)
    for option in ("--max_seq_len", "--max_ans_len", "--freeze_type", "--head_dropout_ratio", "--use_max_padding",
                   "--concat_eval", "--wandb_project", "--eval_strategy", "--save_total_limit"):
        assert option in out.stdout
    bad = subprocess.run([sys.executable, "-m", "odqa", "train-mrc", "--model", str(tmp_path / "missing"),
                          "--output_dir", str(tmp_path / "o")], capture_output=True, text=True)
    assert bad.returncode == 2 and "folder not found" in bad.stderr and "Traceback" not in bad.stderr
