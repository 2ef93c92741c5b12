"""Reader heads: build from an encoder, train-step shapes, exact save/load round trips, errors."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering, BertModel

from odqa.errors import ConfigError
from odqa.reader.modeling import (HEADS, ODQAForQuestionAnswering, find_backbone, find_embeddings, get_model,
                                  load_reader, span_loss)
from tests.helpers_models import TINY_BERT, random_batch, save_tiny_bert, save_tiny_roberta


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("enc") / "tiny-bert")


@pytest.mark.parametrize("head", HEADS)
def test_head_forward_save_load_roundtrip(tiny_bert_dir, tmp_path, head):
    model = get_model(str(tiny_bert_dir), head=head)
    batch = random_batch()

    model.train()
    out = model(**batch)
    assert torch.isfinite(out.loss)
    assert out.start_logits.shape == out.end_logits.shape == batch["input_ids"].shape
    out.loss.backward()
    head_grads = [p.grad for p in model.head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in head_grads)

    model.eval()
    with torch.no_grad():
        before = model(**batch)
    model.save_pretrained(tmp_path / "reader")
    config = json.loads((tmp_path / "reader" / "config.json").read_text())
    assert config["odqa_head"] == head
    assert (tmp_path / "reader" / "model.safetensors").exists()

    restored = load_reader(str(tmp_path / "reader")).eval()
    assert restored.head_name == head
    with torch.no_grad():
        after = restored(**batch)
    assert torch.equal(before.start_logits, after.start_logits)
    assert torch.equal(before.end_logits, after.end_logits)

    # get_model on the saved folder without a head also restores the saved one.
    again = get_model(str(tmp_path / "reader")).eval()
    assert again.head_name == head
    with torch.no_grad():
        assert torch.equal(again(**batch).start_logits, before.start_logits)


def test_backbone_starts_from_the_pretrained_encoder(tiny_bert_dir):
    encoder = BertModel.from_pretrained(str(tiny_bert_dir))
    model = get_model(str(tiny_bert_dir), head="cnn")
    reference = encoder.state_dict()
    loaded = model.backbone.state_dict()
    assert reference.keys() == loaded.keys()
    assert all(torch.equal(reference[k], loaded[k]) for k in reference)


def test_default_head_is_linear_and_dropout_is_configurable(tiny_bert_dir):
    model = get_model(str(tiny_bert_dir), head_dropout_ratio=0.37)
    assert model.head_name == "linear"
    assert model.head.dropout.p == pytest.approx(0.37)
    assert model.config.odqa_head_dropout_ratio == pytest.approx(0.37)


def test_new_head_on_a_saved_reader_keeps_the_trained_backbone(tiny_bert_dir, tmp_path):
    cnn = get_model(str(tiny_bert_dir), head="cnn")
    with torch.no_grad():  # make the backbone differ from the encoder checkpoint
        cnn.backbone.embeddings.word_embeddings.weight.add_(1.0)
    cnn.save_pretrained(tmp_path / "cnn")
    lstm = get_model(str(tmp_path / "cnn"), head="lstm_ln")
    assert lstm.head_name == "lstm_ln"
    assert torch.equal(lstm.backbone.embeddings.word_embeddings.weight,
                       cnn.backbone.embeddings.word_embeddings.weight)


def test_roberta_backbone_with_lstm_head(tmp_path):
    path = save_tiny_roberta(tmp_path / "tiny-roberta")
    model = get_model(str(path), head="lstm_ln").eval()
    batch = random_batch()
    batch["token_type_ids"] = torch.zeros_like(batch["token_type_ids"])  # type_vocab_size is 1
    out = model(**batch)
    assert torch.isfinite(out.loss)
    assert out.start_logits.shape == batch["input_ids"].shape
    assert find_backbone(model) is model.backbone
    assert type(find_embeddings(model)).__name__ == "RobertaEmbeddings"
    model.save_pretrained(tmp_path / "reader")
    restored = load_reader(str(tmp_path / "reader")).eval()
    with torch.no_grad():
        assert torch.equal(restored(**batch).start_logits, model(**batch).start_logits)


def test_hf_qa_checkpoint_keeps_its_trained_span_layer(tmp_path):
    torch.manual_seed(1)
    qa = BertForQuestionAnswering(BertConfig(vocab_size=200, **TINY_BERT)).eval()
    qa.save_pretrained(tmp_path / "qa")
    reader = load_reader(str(tmp_path / "qa")).eval()
    batch = random_batch()
    with torch.no_grad():
        expected, got = qa(**batch), reader(**batch)
    assert torch.allclose(expected.start_logits, got.start_logits, atol=1e-6)
    assert torch.allclose(expected.loss, got.loss, atol=1e-6)


def test_label_smoothing_changes_the_loss(tiny_bert_dir):
    model = get_model(str(tiny_bert_dir), head="linear", label_smoothing_factor=0.2).eval()
    batch = random_batch()
    with torch.no_grad():
        smoothed = model(**batch).loss
        plain = model(**batch, label_smoothing_factor=0.0).loss
    assert model.config.label_smoothing_factor == pytest.approx(0.2)
    assert not torch.isclose(smoothed, plain)


def test_span_loss_ignores_positions_outside_the_sequence():
    logits = torch.randn(2, 5)
    inside = span_loss(logits[:1], logits[:1], torch.tensor([1]), torch.tensor([2]))
    with_outside = span_loss(logits, logits, torch.tensor([1, 99]), torch.tensor([2, 99]))
    assert torch.isclose(inside, with_outside)


def test_cnn_and_lstm_ignore_what_is_in_padding(tiny_bert_dir):
    """Changing padded token ids must not change the logits of real tokens."""
    for head in HEADS:
        model = get_model(str(tiny_bert_dir), head=head).eval()
        batch = random_batch(pad_last=4)
        changed = {k: v.clone() for k, v in batch.items()}
        changed["input_ids"][-1, -4:] = 7
        with torch.no_grad():
            a = model(**batch).start_logits[-1, :-4]
            b = model(**changed).start_logits[-1, :-4]
        assert torch.allclose(a, b, atol=1e-5), head


def test_unknown_head_lists_the_valid_ones(tiny_bert_dir):
    with pytest.raises(ConfigError, match="linear, lstm_ln, cnn, rnn, lstm_cnn, attention, attention_ln"):
        get_model(str(tiny_bert_dir), head="gru")


def test_missing_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="minilm") as err:
        get_model(str(tmp_path / "no-such-model"))
    assert "no-such-model" in str(err.value)


def test_load_reader_refuses_a_bare_encoder(tiny_bert_dir):
    with pytest.raises(ConfigError, match="odqa_head"):
        load_reader(str(tiny_bert_dir))


def test_find_backbone_and_embeddings_on_hf_models():
    qa = BertForQuestionAnswering(BertConfig(vocab_size=50, **TINY_BERT))
    assert find_backbone(qa) is qa.bert
    assert find_embeddings(qa) is qa.bert.embeddings
    assert find_backbone(qa, name="bert") is qa.bert
    assert find_embeddings(qa, name="bert.embeddings") is qa.bert.embeddings
    bare = BertModel(BertConfig(vocab_size=50, **TINY_BERT))
    assert find_backbone(bare) is bare


def test_find_backbone_error_names_the_top_level_modules():
    model = torch.nn.Sequential()
    model.add_module("encoder_x", torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="encoder_x"):
        find_backbone(model)
    qa = BertForQuestionAnswering(BertConfig(vocab_size=50, **TINY_BERT))
    with pytest.raises(ConfigError, match="qa_outputs"):
        find_backbone(qa, name="electra")


def test_model_is_an_odqa_pretrained_model(tiny_bert_dir):
    model = get_model(str(tiny_bert_dir), head="lstm_ln")
    assert isinstance(model, ODQAForQuestionAnswering)
    assert model.config.architectures == ["ODQAForQuestionAnswering"]


def test_encoder_dropout_overrides_reach_the_modules_and_are_saved(tiny_bert_dir, tmp_path):
    def dropout_ps(model):
        return {name: m.p for name, m in model.backbone.named_modules() if isinstance(m, torch.nn.Dropout)}

    default = get_model(str(tiny_bert_dir))
    assert set(dropout_ps(default).values()) == {0.1}
    model = get_model(str(tiny_bert_dir), head="lstm_ln", attention_dropout=0.0, hidden_dropout=0.05)
    ps = dropout_ps(model)
    assert {p for name, p in ps.items() if "attention.self" in name} == {0.0}
    assert {p for name, p in ps.items() if "attention.self" not in name} == {0.05}
    assert model.config.attention_probs_dropout_prob == 0.0 and model.config.hidden_dropout_prob == 0.05
    model.save_pretrained(tmp_path / "reader")
    restored = load_reader(str(tmp_path / "reader"))
    assert restored.config.attention_probs_dropout_prob == 0.0 and dropout_ps(restored) == ps
    # a saved reader with a new head keeps the override too
    assert dropout_ps(get_model(str(tmp_path / "reader"), head="cnn")) == ps
    with pytest.raises(ConfigError, match="attention dropout must be in"):
        get_model(str(tiny_bert_dir), attention_dropout=1.5)


def test_attention_heads_have_their_shapes_and_the_rnn_end_pointer_reads_the_start_state():
    from odqa.reader.heads import build_head

    assert build_head("multihead_attention", 384, 0.1).num_heads == 8
    assert build_head("multihead_attention", 36, 0.1).num_heads == 6  # largest divisor of the width up to 8
    assert build_head("attention", 384, 0.1).num_heads == 1
    assert build_head("attention_ln", 32, 0.1).layer_norm is not None
    assert build_head("lstm_cnn", 32, 0.1).qa_outputs.in_features == 32  # the convolutions split the width

    torch.manual_seed(0)
    rnn = build_head("rnn", 16, 0.0).eval()
    hidden, mask = torch.randn(2, 7, 16), torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad():
        before = rnn(hidden, mask)
        rnn.start_lstm.weight_hh_l0.add_(0.5)  # changes the start LSTM's final state only through the recurrence
        after = rnn(hidden, mask)
    assert not torch.allclose(before[..., 1], after[..., 1])  # end logits follow the start LSTM's state
