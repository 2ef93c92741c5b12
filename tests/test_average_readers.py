"""`odqa average-readers`: the weighted average of readers fine-tuned from one model, written as a reader."""
from __future__ import annotations

import json

import pytest
import torch

from odqa.cli import main as odqa_main
from odqa.errors import ConfigError
from odqa.reader.averaging import average_readers, average_state_dicts, normalised_weights
from odqa.reader.modeling import get_model, load_reader
from tests.helpers_models import random_batch, save_tiny_bert, save_tiny_roberta
from tests.test_export_reader import korean_tokenizer


TOKENIZER = korean_tokenizer()  # once: training a tiny WordPiece twice may number its tokens differently


def fine_tuned(encoder_dir, reader_dir, seed: int, head: str = "linear", tokenizer=TOKENIZER):
    """A reader whose every weight moved away from the encoder's by its own seed, as fine-tuning would."""
    model = get_model(str(encoder_dir), head=head)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    model.save_pretrained(reader_dir)
    tokenizer.save_pretrained(reader_dir)
    return model.eval()


def test_average_is_the_mean_of_every_weight_and_loads_as_a_reader(tmp_path):
    encoder = save_tiny_bert(tmp_path / "enc")
    a, b = fine_tuned(encoder, tmp_path / "a", 1), fine_tuned(encoder, tmp_path / "b", 2)
    (tmp_path / "a" / "no_answer_threshold.json").write_text('{"threshold": 1.5}')
    code = odqa_main(["average-readers", "--models", str(tmp_path / "a"), str(tmp_path / "b"),
                      "--output_dir", str(tmp_path / "avg")])
    assert code == 0

    averaged = load_reader(str(tmp_path / "avg")).eval()
    assert averaged.head_name == "linear"
    state_a, state_b = a.state_dict(), b.state_dict()
    for key, value in averaged.state_dict().items():
        if torch.is_floating_point(value):
            assert torch.allclose(value, (state_a[key] + state_b[key]) / 2, atol=1e-6), key
    batch = random_batch()
    with torch.inference_mode():
        logits = averaged(**batch).start_logits
        assert not torch.allclose(logits, a(**batch).start_logits)
        assert not torch.allclose(logits, b(**batch).start_logits)
    info = json.loads((tmp_path / "avg" / "run_info.json").read_text())
    assert [s["model"] for s in info["averaged_from"]] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert (tmp_path / "avg" / "tokenizer.json").is_file()
    assert not (tmp_path / "avg" / "no_answer_threshold.json").exists(), "a threshold of another model carried over"
    assert not list((tmp_path / "avg").glob("*.bin")), "pickle weights written"


def test_weights_are_normalised_and_applied(tmp_path):
    encoder = save_tiny_bert(tmp_path / "enc")
    a, b = fine_tuned(encoder, tmp_path / "a", 1), fine_tuned(encoder, tmp_path / "b", 2)
    average_readers([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "avg", weights=[3, 1])
    averaged = load_reader(str(tmp_path / "avg"))
    key = "head.qa_outputs.weight"
    expected = 0.75 * a.state_dict()[key] + 0.25 * b.state_dict()[key]
    assert torch.allclose(averaged.state_dict()[key], expected, atol=1e-6)


def test_integer_buffers_are_kept_and_floats_cast_back():
    first = {"w": torch.ones(2, dtype=torch.float16), "ids": torch.arange(3)}
    second = {"w": torch.full((2,), 3.0, dtype=torch.float16), "ids": torch.arange(3) + 7}
    out = average_state_dicts([first, second], [0.5, 0.5])
    assert out["w"].dtype == torch.float16 and out["w"].tolist() == [2.0, 2.0]
    assert out["ids"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("n, weights, message", [
    (1, None, "two or more"),
    (2, [1.0], "one per reader"),
    (2, [1.0, -1.0], "non-negative"),
    (2, [0.0, 0.0], "not all zero"),
])
def test_bad_weights_are_one_line_errors(n, weights, message):
    with pytest.raises(ConfigError, match=message):
        normalised_weights(n, weights)


def test_other_head_or_architecture_is_refused_and_nothing_is_written(tmp_path, capsys):
    bert = save_tiny_bert(tmp_path / "bert")
    fine_tuned(bert, tmp_path / "linear", 1)
    fine_tuned(bert, tmp_path / "lstm", 2, head="lstm_ln")
    fine_tuned(save_tiny_roberta(tmp_path / "roberta"), tmp_path / "roberta_reader", 3)
    for other, what in (("lstm", "head"), ("roberta_reader", "model_type")):
        code = odqa_main(["average-readers", "--models", str(tmp_path / "linear"), str(tmp_path / other),
                          "--output_dir", str(tmp_path / "avg")])
        err = capsys.readouterr().err
        assert code == 2 and str(tmp_path / other) in err and what in err and "Traceback" not in err
    assert not (tmp_path / "avg").exists()
    assert not list(tmp_path.glob(".avg.*")), "a half-written folder was left behind"


def test_another_vocabulary_is_refused(tmp_path):
    encoder = save_tiny_bert(tmp_path / "enc")
    other = korean_tokenizer()
    other.add_tokens(["경복궁"])
    fine_tuned(encoder, tmp_path / "a", 1)
    fine_tuned(encoder, tmp_path / "b", 2, tokenizer=other)
    with pytest.raises(ConfigError, match="vocabulary differs"):
        average_readers([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "avg")
    assert not (tmp_path / "avg").exists()


def test_refuses_to_overwrite_without_flag(tmp_path):
    encoder = save_tiny_bert(tmp_path / "enc")
    fine_tuned(encoder, tmp_path / "a", 1)
    fine_tuned(encoder, tmp_path / "b", 2)
    (tmp_path / "avg").mkdir()
    (tmp_path / "avg" / "notes.txt").write_text("mine")
    models = [str(tmp_path / "a"), str(tmp_path / "b")]
    with pytest.raises(ConfigError, match="--overwrite"):
        average_readers(models, tmp_path / "avg")
    assert (tmp_path / "avg" / "notes.txt").read_text() == "mine"
    average_readers(models, tmp_path / "avg", overwrite=True)
    assert (tmp_path / "avg" / "model.safetensors").is_file() and not (tmp_path / "avg" / "notes.txt").exists()
