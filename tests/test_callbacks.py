"""Freezing and EM-gated checkpointing, checked against the real transformers Trainer."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback, TrainingArguments

from odqa.errors import ConfigError
from odqa.reader.callbacks import (EMGatedCheckpointCallback, FreezeBackboneCallback, FreezeEmbeddingCallback,
                                   build_freeze_callback, check_gated_checkpoint_args,
                                   should_save_checkpoint)
from odqa.reader.modeling import get_model
from tests.helpers_models import random_batch, save_tiny_bert


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 8, seed: int = 0) -> None:
        batch = random_batch(batch=n, seq=12, seed=seed, pad_last=3)
        self.rows = [{k: v[i] for k, v in batch.items()} for i in range(n)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return str(save_tiny_bert(tmp_path_factory.mktemp("enc") / "tiny-bert", with_tokenizer=False))


def training_args(out: Path, **overrides) -> TrainingArguments:
    defaults = dict(output_dir=str(out), per_device_train_batch_size=4, per_device_eval_batch_size=4,
                    learning_rate=1e-2, num_train_epochs=2, eval_strategy="no", save_strategy="no",
                    logging_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
                    dataloader_num_workers=0)
    defaults.update(overrides)
    return TrainingArguments(**defaults)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class EpochSnapshots(TrainerCallback):
    """Record the weights at each epoch end and whether the watched module was trainable per step."""

    def __init__(self, model) -> None:
        self.model = model
        self.at_epoch_end: list[dict] = []
        self.trainable_per_step: list[tuple[float, bool, bool]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        emb = self.model.backbone.embeddings.word_embeddings.weight.requires_grad
        layer = self.model.backbone.encoder.layer[0].attention.self.query.weight.requires_grad
        self.trainable_per_step.append((state.epoch, emb, layer))

    def on_epoch_end(self, args, state, control, **kwargs):
        self.at_epoch_end.append(snapshot(self.model))


def run_with_freeze(encoder_dir: str, tmp_path: Path, callback) -> tuple[dict, EpochSnapshots, dict]:
    model = get_model(encoder_dir, head="linear")
    initial = snapshot(model)
    probe = EpochSnapshots(model)
    trainer = Trainer(model=model, args=training_args(tmp_path / "out"), train_dataset=ListDataset(),
                      callbacks=[callback, probe])
    trainer.train()
    return initial, probe, snapshot(model)


def part(state: dict, prefix: str, exclude: str | None = None) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefix) and not (exclude and k.startswith(exclude))}


def test_embedding_freeze_for_one_epoch(encoder_dir, tmp_path):
    initial, probe, final = run_with_freeze(encoder_dir, tmp_path, FreezeEmbeddingCallback(1.0))
    after_epoch1 = probe.at_epoch_end[0]
    emb = "backbone.embeddings."
    assert same(part(initial, emb), part(after_epoch1, emb))  # byte-identical while frozen
    assert not same(part(initial, "backbone.encoder."), part(after_epoch1, "backbone.encoder."))
    assert not same(part(after_epoch1, emb), part(final, emb))  # trained after unfreezing
    # steps of epoch 1 saw frozen embeddings but trainable layers; epoch 2 saw everything trainable
    epoch1 = [s for s in probe.trainable_per_step if s[0] < 1.0]
    epoch2 = [s for s in probe.trainable_per_step if s[0] >= 1.0]
    assert epoch1 and all(not e and l for _, e, l in epoch1)
    assert epoch2 and all(e and l for _, e, l in epoch2)


def test_backbone_freeze_for_half_an_epoch(encoder_dir, tmp_path):
    model = get_model(encoder_dir, head="cnn")
    initial = snapshot(model)
    probe = EpochSnapshots(model)
    # 8 rows / batch 2 = 4 steps per epoch: frozen for steps 1-2, trained from step 3 on
    args = training_args(tmp_path / "out", per_device_train_batch_size=2, num_train_epochs=1)

    class AtStep2(TrainerCallback):
        state_at_2 = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                AtStep2.state_at_2 = snapshot(model)

    trainer = Trainer(model=model, args=args, train_dataset=ListDataset(),
                      callbacks=[FreezeBackboneCallback(0.5), probe, AtStep2()])
    trainer.train()
    final = snapshot(model)
    at2 = AtStep2.state_at_2
    assert same(part(initial, "backbone."), part(at2, "backbone."))
    assert not same(part(initial, "head."), part(at2, "head."))
    assert not same(part(at2, "backbone."), part(final, "backbone."))
    assert all(p.requires_grad for p in model.parameters())


def test_backbone_frozen_for_the_last_epoch_only(encoder_dir, tmp_path):
    """--freeze_pretrained_weight last (odqa: --freeze_when last): trained in epoch 1, frozen in epoch 2."""
    model = get_model(encoder_dir, head="linear")
    probe = EpochSnapshots(model)
    trainer = Trainer(model=model, args=training_args(tmp_path / "out"), train_dataset=ListDataset(),
                      callbacks=[FreezeBackboneCallback(1.0, when="last"), probe])
    trainer.train()
    after_epoch1, final = probe.at_epoch_end
    backbone = "backbone."
    assert same(part(after_epoch1, backbone), part(final, backbone))  # untouched in the last epoch
    assert not same(part(after_epoch1, "head."), part(final, "head."))  # the head still trains
    epoch1 = [s for s in probe.trainable_per_step if s[0] < 1.0]
    assert epoch1 and all(layer for _, _, layer in epoch1)
    assert all(p.requires_grad for p in model.parameters())  # handed back trainable


def test_build_freeze_callback():
    assert build_freeze_callback("none", 1.0) is None
    assert build_freeze_callback("embedding", 0) is None
    assert isinstance(build_freeze_callback("embedding", 0.5), FreezeEmbeddingCallback)
    cb = build_freeze_callback("backbone", 2, backbone_name="bert")
    assert isinstance(cb, FreezeBackboneCallback) and cb.backbone_name == "bert"
    with pytest.raises(ConfigError, match="none, embedding, backbone"):
        build_freeze_callback("encoder", 1.0)
    with pytest.raises(ConfigError):
        build_freeze_callback("backbone", -1)


# ---------------------------------------------------------------------------- EM gate
@pytest.mark.parametrize("best_loss, best_em, loss, em, expected", [
    (None, None, 1.0, 10.0, True),          # first evaluation
    (None, None, math.nan, None, True),     # first evaluation, even if broken
    (1.0, 10.0, 0.9, 5.0, True),            # loss down, EM down
    (1.0, 10.0, 1.1, 12.0, True),           # loss up, EM above best
    (1.0, 10.0, 1.1, 9.0, False),           # both worse
    (1.0, 10.0, 1.0, 10.0, False),          # ties do not save
    (1.0, 10.0, math.nan, 11.0, True),      # NaN loss: EM decides
    (1.0, 10.0, math.nan, 10.0, False),
    (1.0, 10.0, 0.5, math.nan, True),       # NaN EM: loss decides
    (1.0, 10.0, None, None, False),         # metrics missing
    (1.0, 10.0, math.inf, 10.5, True),
    (None, 10.0, 3.0, 1.0, True),           # first finite loss counts as a decrease
    (1.0, None, 2.0, 0.0, True),            # first finite EM counts as a rise
])
def test_should_save_checkpoint(best_loss, best_em, loss, em, expected):
    assert should_save_checkpoint(best_loss, best_em, loss, em) is expected


# step -> scripted eval metrics; comments: the gate's decision
SCRIPT = {
    1: {"eval_loss": 1.00, "eval_exact_match": 10.0},  # save (first)
    2: {"eval_loss": 0.90, "eval_exact_match": 5.0},   # save (loss down)
    3: {"eval_loss": 0.95, "eval_exact_match": 20.0},  # save (EM up)
    4: {"eval_loss": 0.92, "eval_exact_match": 15.0},  # skip
    5: {"eval_loss": 0.80, "eval_exact_match": 12.0},  # save (loss down) -> best
    6: {"eval_loss": 0.85, "eval_exact_match": 19.0},  # skip
}


class ScriptedTrainer(Trainer):
    """evaluate() returns scripted metrics and fires on_evaluate, like QATrainer.evaluate."""

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        metrics = dict(SCRIPT[self.state.global_step])
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def run_gated(encoder_dir: str, out: Path, save_total_limit: int | None, load_best_at_end: bool = True,
              **overrides):
    model = get_model(encoder_dir, head="lstm_ln")
    args = training_args(out, max_steps=6, eval_strategy="steps", eval_steps=1, save_strategy="steps",
                         save_steps=1, save_total_limit=save_total_limit, **overrides)
    gate = EMGatedCheckpointCallback(load_best_at_end=load_best_at_end)
    trainer = ScriptedTrainer(model=model, args=args, train_dataset=ListDataset(n=24),
                              eval_dataset=ListDataset(n=4), callbacks=[gate])
    trainer.train()
    return model, trainer, gate


def checkpoints(out: Path) -> set[str]:
    return {p.name for p in out.glob("checkpoint-*")}


@pytest.fixture(scope="module")
def gated_run(encoder_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gated") / "out"
    model, trainer, gate = run_gated(encoder_dir, out, save_total_limit=2)
    return out, model, trainer, gate


def test_gate_keeps_the_best_checkpoint_and_reloads_it(gated_run):
    out, model, trainer, gate = gated_run
    assert checkpoints(out) == {"checkpoint-3", "checkpoint-5"}
    assert trainer.state.best_model_checkpoint == str(out / "checkpoint-5")
    assert (gate.best_loss, gate.best_em) == (0.80, 20.0)
    best = load_file(out / "checkpoint-5" / "model.safetensors")
    other = load_file(out / "checkpoint-3" / "model.safetensors")
    current = model.state_dict()
    assert all(torch.equal(current[k], best[k]) for k in best)
    assert not all(torch.equal(other[k], best[k]) for k in best)


def test_gate_with_save_total_limit_one(encoder_dir, tmp_path):
    out = tmp_path / "out"
    run_gated(encoder_dir, out, save_total_limit=1)
    assert checkpoints(out) == {"checkpoint-5"}


def test_gate_without_reload_keeps_the_final_weights(encoder_dir, tmp_path):
    out = tmp_path / "out"
    model, _, _ = run_gated(encoder_dir, out, save_total_limit=None, load_best_at_end=False)
    assert checkpoints(out) == {"checkpoint-1", "checkpoint-2", "checkpoint-3", "checkpoint-5"}
    best = load_file(out / "checkpoint-5" / "model.safetensors")
    current = model.state_dict()
    assert not all(torch.equal(current[k], best[k]) for k in best)  # step 6 trained past the best


def test_gate_rejects_misaligned_arguments_at_train_begin(encoder_dir, tmp_path):
    model = get_model(encoder_dir, head="linear")
    args = training_args(tmp_path / "out", max_steps=2, eval_strategy="steps", eval_steps=1,
                         save_strategy="epoch")
    trainer = ScriptedTrainer(model=model, args=args, train_dataset=ListDataset(), eval_dataset=ListDataset(n=4),
                              callbacks=[EMGatedCheckpointCallback()])
    with pytest.raises(ConfigError, match="save_strategy"):
        trainer.train()
    assert checkpoints(tmp_path / "out") == set()


@pytest.mark.parametrize("overrides, message", [
    (dict(save_strategy="epoch"), "save_strategy"),
    (dict(save_steps=2), "save_steps"),
    (dict(eval_strategy="no", save_strategy="no"), "eval_strategy"),
    (dict(load_best_model_at_end=True), "load_best_model_at_end"),
    (dict(metric_for_best_model="exact_match"), "metric_for_best_model"),
])
def test_check_gated_checkpoint_args(tmp_path, overrides, message):
    base = dict(eval_strategy="steps", eval_steps=1, save_strategy="steps", save_steps=1)
    base.update(overrides)
    with pytest.raises(ConfigError, match=message):
        check_gated_checkpoint_args(training_args(tmp_path, **base))
    check_gated_checkpoint_args(training_args(tmp_path, eval_strategy="epoch", save_strategy="epoch"))


def test_evaluations_outside_training_do_not_move_the_bests(gated_run, monkeypatch):
    out, _, trainer, gate = gated_run
    monkeypatch.setitem(SCRIPT, trainer.state.global_step, {"eval_loss": 0.01, "eval_exact_match": 99.0})
    trainer.evaluate()
    assert (gate.best_loss, gate.best_em) == (0.80, 20.0)
    assert checkpoints(out) == {"checkpoint-3", "checkpoint-5"}
