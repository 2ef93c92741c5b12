"""A short end-to-end `train-mrc` run on a tiny BERT, through the CLI entry point."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from odqa.errors import ConfigError

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


TINY = ["--max_seq_len", "64", "--doc_stride", "16", "--max_query_length", "16", "--max_ans_len", "20",
        "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--report_to", "none"]


def test_the_original_readme_command_runs_and_run_names_never_overwrite(tiny_encoder, squad_file, tmp_path, capsys):
    """train_mrc_v2.py's README example (their spellings), twice: exp, then exp2; notes say what each became."""
    from odqa.reader.modeling import load_reader
    from odqa.reader.train import main

    command = ["--do_train", "--do_eval", "--output_dir", str(tmp_path / "saved"), "--logging_dir",
               str(tmp_path / "logs"), "--seed", "42", "--model", str(tiny_encoder), "--train_dataset", str(squad_file),
               "--eval_dataset", str(squad_file), "--num_train_epochs", "1", "--weight_decay", "0.015",
               "--stride_len", "16", "--evaluation_strategy", "steps", "--eval_steps", "2", "--logging_steps", "1",
               "--save_steps", "4", "--save_total_limit", "5", "--freeze_type", "roberta", "--freeze_epoch", "0.5",
               "--label_smoothing_factor", "0.02", "--run_name", "exp",
               "--head", "CustomRobertaForQuestionAnsweringWithAttentionWithLNHead", "--warmup_cycles", "2", *TINY]
    assert main(command) == 0
    notes = capsys.readouterr().err
    assert "--freeze_type roberta -> --freeze_type backbone" in notes
    assert "-> --head attention_ln" in notes and "cosine_with_restarts" in notes
    first = tmp_path / "saved" / "exp"
    assert load_reader(str(first)).config.odqa_head == "attention_ln"
    args = json.loads((first / "training_args.json").read_text(encoding="utf-8"))
    assert args["lr_scheduler_type"] == "cosine_with_restarts" and args["lr_scheduler_kwargs"] == {"num_cycles": 2}
    assert args["output_dir"] == str(first)
    history = json.loads((tmp_path / "logs" / "exp" / "log_history.json").read_text(encoding="utf-8"))
    assert any("loss" in entry for entry in history) and any("eval_exact_match" in entry for entry in history)
    before = (first / "model.safetensors").read_bytes()

    assert main(command) == 0
    assert (tmp_path / "saved" / "exp2" / "model.safetensors").is_file()
    assert (first / "model.safetensors").read_bytes() == before  # the earlier run is untouched
    assert main([*command, "--overwrite_output_dir"]) == 0
    assert not (tmp_path / "saved" / "exp3").exists()


def test_do_eval_alone_scores_the_model_as_it_is(tiny_encoder, squad_file, tmp_path):
    from odqa.reader.train import main

    trained = tmp_path / "trained"
    assert main(["--model", str(tiny_encoder), "--train_dataset", str(squad_file), "--eval_dataset", str(squad_file),
                 "--output_dir", str(trained), "--num_train_epochs", "1", "--eval_strategy", "no", *TINY]) == 0
    weights = (trained / "model.safetensors").read_bytes()
    out = tmp_path / "eval_only"
    assert main(["--do_eval", "--model", str(trained), "--eval_dataset", str(squad_file), "--output_dir", str(out),
                 *TINY]) == 0
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    assert "train" not in info["results"] and "eval_exact_match" in info["results"]["eval"]
    assert (out / "predictions.json").is_file() and not (out / "model.safetensors").exists()
    assert (trained / "model.safetensors").read_bytes() == weights


class Crash(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_result(tiny_encoder, squad_file, tmp_path):
    """Interrupted right after its first checkpoint, then resumed with --resume_from_checkpoint True: the same
    final weights, gate decisions and metrics as a run that was never interrupted."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from odqa.reader.train import ReaderArguments, ReaderDataArguments, ReaderTrainingArguments, parse_cli, train_reader

    def parse(output: Path, *extra: str):
        return parse_cli([ReaderArguments, ReaderDataArguments, ReaderTrainingArguments], [
            "--model", str(tiny_encoder), "--train_dataset", str(squad_file), "--eval_dataset", str(squad_file),
            "--output_dir", str(output), "--num_train_epochs", "3", "--eval_strategy", "steps", "--eval_steps", "3",
            "--head", "lstm_ln", "--freeze_type", "backbone", "--freeze_epoch", "1", "--save_total_limit", "5",
            "--run_name", "r", *TINY, *extra], prog="t", description="")

    class KillAfterFirstCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Crash(f"killed after saving step {state.global_step}")

    whole = train_reader(*parse(tmp_path / "whole"))
    with pytest.raises(Crash):
        train_reader(*parse(tmp_path / "killed"), callbacks=[KillAfterFirstCheckpoint()])
    killed = tmp_path / "killed" / "r"
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-3"] and not (killed / "run_info.json").exists()
    resumed = train_reader(*parse(tmp_path / "killed", "--resume_from_checkpoint", "True"))

    assert resumed["output_dir"] == str(killed)  # resumed in place, not in r2
    expected, got = (load_file(str(Path(r["output_dir"]) / "model.safetensors")) for r in (whole, resumed))
    assert expected.keys() == got.keys()
    assert all(torch.allclose(expected[k], got[k], atol=1e-6) for k in expected)
    assert resumed["eval"]["eval_exact_match"] == whole["eval"]["eval_exact_match"]
    assert resumed["eval"]["eval_loss"] == pytest.approx(whole["eval"]["eval_loss"], abs=1e-5)
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == sorted(
        p.name for p in (tmp_path / "whole" / "r").glob("checkpoint-*"))  # the gate kept the same checkpoints


def test_original_flags_translate_with_a_note_each():
    from odqa.reader.legacy_flags import translate_train_flags

    argv, notes = translate_train_flags(["--freeze_pretrained_weight", "last", "--freeze_pretrained_weight_epoch",
                                         "2", "--freeze_embedding_layer_weight", "--custom_model",
                                         "CustomRobertaForQuestionAnsweringWithLSTMCNNHead", "--seed", "1"])
    assert argv == ["--seed", "1", "--head", "lstm_cnn", "--freeze_type", "backbone", "--freeze_epoch", "2",
                    "--freeze_when", "last", "--freeze_word_embeddings"]
    assert len(notes) == 3
    assert translate_train_flags(["--freeze_pretrained_weight", "all"])[0][-1] == "inf"
    assert translate_train_flags(["--freeze_pretrained_weight", "none", "--freeze_pretrained_weight_epoch", "3"]) \
        == ([], [])
    with pytest.raises(ConfigError, match="lstm_ln"):
        translate_train_flags(["--custom_model", "CustomRobertaForQuestionAnsweringWithAttentionCNNHead"])


def test_resume_without_a_checkpoint_is_one_clear_line(tiny_encoder, squad_file, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "odqa", "train-mrc", "--model", str(tiny_encoder), "--output_dir",
                          str(tmp_path / "o"), "--train_dataset", str(squad_file), "--resume_from_checkpoint", "True"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no checkpoint-* folder" in bad.stderr and "Traceback" not in bad.stderr
