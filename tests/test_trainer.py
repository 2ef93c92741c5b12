"""QATrainer evaluation must map logits back to the right windows, whatever the training sampler."""
import json

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from odqa.reader.modeling import get_model
from odqa.reader.processor import QAProcessor, WindowConfig, model_inputs
from odqa.reader.tokenizer import load_tokenizer
from odqa.reader.train import ReaderTrainingArguments
from odqa.reader.trainer import QATrainer
from tests.helpers_models import save_tiny_bert


def test_evaluation_keeps_feature_order_under_group_by_length(squad_file, tmp_path):
    """transformers 5 would apply group_by_length (a shuffling sampler) to evaluation too."""
    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=200)
    tokenizer = load_tokenizer(str(encoder))
    processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=48, doc_stride=16, max_query_length=12))
    examples = processor.get_eval_examples(str(squad_file))
    features = processor.get_eval_features(examples)
    lengths = [len(x) for x in features["input_ids"]]
    assert len(set(lengths)) > 1  # windows of different lengths: a length-grouped sampler would reorder them
    model = get_model(str(encoder)).eval()
    args = ReaderTrainingArguments(output_dir=str(tmp_path / "out"), per_device_eval_batch_size=3, report_to="none",
                                   train_sampling_strategy="group_by_length")
    trainer = QATrainer(model=model, args=args, eval_dataset=features, eval_examples=examples,
                        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                        post_process_function=processor.post_processing_function,
                        predictions_dir=str(tmp_path / "pred"))

    order = [row.tolist() for batch in trainer.get_eval_dataloader(model_inputs(features))
             for row, mask in zip(batch["input_ids"], batch["attention_mask"]) for row in [row[mask.bool()]]]
    assert order == list(features["input_ids"])

    trainer.evaluate()
    with torch.inference_mode():  # the same model, one window at a time, in dataset order
        outputs = [model(**{k: torch.tensor([features[i][k]]) for k in ("input_ids", "attention_mask",
                                                                          "token_type_ids")})
                   for i in range(len(features))]
    width = max(lengths)
    pad = lambda t: np.pad(t[0].numpy(), (0, width - t.shape[1]), constant_values=-1e4)  # noqa: E731
    expected, _ = processor.post_processing_function(
        examples, features, (np.stack([pad(o.start_logits) for o in outputs]),
                             np.stack([pad(o.end_logits) for o in outputs])))
    written = json.loads((tmp_path / "pred" / "predictions.json").read_text(encoding="utf-8"))
    assert written == expected


def test_a_compute_metrics_hook_replaces_the_built_in_scores(squad_file, tmp_path):
    """As in HF run_qa: compute_metrics gets [{id, prediction_text}] and [{id, answers}], its keys prefixed."""
    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=200)
    tokenizer = load_tokenizer(str(encoder))
    processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=48, doc_stride=16, max_query_length=12))
    examples = processor.get_eval_examples(str(squad_file))
    seen = {}

    def answer_length(prediction):
        seen["ids"] = [p["id"] for p in prediction.predictions]
        assert [r["id"] for r in prediction.label_ids] == seen["ids"] and "answers" in prediction.label_ids[0]
        return {"mean_answer_chars": float(np.mean([len(p["prediction_text"]) for p in prediction.predictions]))}

    args = ReaderTrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    trainer = QATrainer(model=get_model(str(encoder)).eval(), args=args, eval_dataset=processor.get_eval_features(examples),
                        eval_examples=examples, processing_class=tokenizer,
                        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=answer_length,
                        post_process_function=processor.post_processing_function)
    metrics = trainer.evaluate()
    assert "eval_mean_answer_chars" in metrics and "eval_exact_match" not in metrics
    assert seen["ids"] == list(examples["id"])


def test_predict_answers_as_the_pipeline_reader_does(squad_file, tmp_path):
    """One forward loop and one post-processing: QATrainer.predict and ExtractiveReader (given each question's own
    context as its only passage) give the same answers with the same probabilities."""
    from odqa.reader.answers import PassageToRead
    from odqa.reader.extractive import ExtractiveReader

    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=200)
    tokenizer = load_tokenizer(str(encoder))
    window = WindowConfig(max_seq_length=48, doc_stride=16, max_query_length=12)
    processor = QAProcessor(tokenizer, window)
    examples = processor.get_eval_examples(str(squad_file))
    features = processor.get_test_features(examples)
    model = get_model(str(encoder))
    args = ReaderTrainingArguments(output_dir=str(tmp_path / "out"), per_device_eval_batch_size=4, report_to="none",
                                   eval_strategy="no", save_strategy="no")
    trainer = QATrainer(model=model, args=args, processing_class=tokenizer,
                        post_process_function=processor.post_processing_function, predictions_dir=str(tmp_path / "p"))
    output = trainer.predict(features, examples)
    nbest = json.loads((tmp_path / "p" / "nbest_predictions.json").read_text(encoding="utf-8"))

    reader = ExtractiveReader(model, tokenizer, window, batch_size=3)
    answers = reader.read(list(examples["question"]), [[PassageToRead(qid, context)] for qid, context
                                                       in zip(examples["id"], examples["context"])])
    assert output.predictions == {qid: found[0].text for qid, found in zip(examples["id"], answers)}
    for qid, found in zip(examples["id"], answers):
        assert [a.text for a in found] == [c["text"] for c in nbest[qid]][:len(found)]
        assert np.allclose([a.probability for a in found], [c["probability"] for c in nbest[qid]][:len(found)])
    assert output.metrics["test_exact_match"] >= 0 and "test_samples_per_second" in output.metrics
