"""QATrainer: a Hugging Face Trainer whose evaluate/predict speak answers, not logits.

``evaluate`` runs the model over the eval *features*, post-processes the logits into answers
for the eval *examples*, and reports ``eval_exact_match``/``eval_f1`` (KorQuAD rules by default)
next to ``eval_loss`` — the pair the EM-gated checkpointing decides on.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from transformers import Trainer
from transformers.trainer_utils import PredictionOutput, speed_metrics

from odqa.metrics import compute_metrics as answer_metrics
from odqa.reader.processor import model_inputs
from odqa.utils.io import write_text

TRAINING_ARGS_JSON = "training_args.json"


class QATrainer(Trainer):
    """``Trainer`` + post-processing.

    Args (beyond ``Trainer``'s):
        eval_examples: the examples behind ``eval_dataset`` (features with example ids/offsets).
        post_process_function: ``(examples, features, (start_logits, end_logits), output_dir)``
            → ``(predictions, nbest)``; normally ``QAProcessor.post_processing_function``.
        metric: ``"korquad"`` (character F1) or ``"squad"`` (token F1), used unless ``compute_metrics``
            (``Trainer``'s own argument) is given: as in HF's run_qa it receives an ``EvalPrediction`` whose
            ``predictions`` are ``[{"id", "prediction_text"}]`` and ``label_ids`` ``[{"id", "answers"}]``.
        predictions_dir: where ``predictions.json``/``nbest_predictions.json`` are written.
    """

    def __init__(self, *args: Any, eval_examples=None, post_process_function: Callable | None = None,
                 metric: str = "korquad", predictions_dir: str | None = None, **kwargs: Any) -> None:
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if training_args is not None and not training_args.label_names:
            # without this the Trainer sees no labels: no eval_loss, and the loss leaks into the logits
            training_args.label_names = ["start_positions", "end_positions"]
        super().__init__(*args, **kwargs)
        self.eval_examples = eval_examples
        self.post_process_function = post_process_function
        self.metric = metric
        self.predictions_dir = predictions_dir

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Save as ``Trainer`` does, but the training arguments as JSON, not as the pickle ``training_args.bin``.

        Every file of a saved reader then loads without unpickling (weights: safetensors).
        """
        from transformers.trainer import TRAINING_ARGS_NAME

        super()._save(output_dir, state_dict=state_dict)
        if not self.args.should_save:
            return
        directory = Path(output_dir if output_dir is not None else self.args.output_dir)
        (directory / TRAINING_ARGS_NAME).unlink(missing_ok=True)
        write_text(directory / TRAINING_ARGS_JSON, self.args.to_json_string())

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation and prediction keep the features' order: post-processing maps logits to features by position.

        transformers 5 applies ``train_sampling_strategy="group_by_length"`` (our training default) to
        evaluation too, with a shuffling LengthGroupedSampler: the logits would land on the wrong windows.
        """
        from torch.utils.data import SequentialSampler

        if eval_dataset is None or self.args.world_size > 1:
            return None  # distributed: accelerate shards in order and gathers back in order
        return SequentialSampler(eval_dataset)

    def _logits(self, features, description: str, metric_key_prefix: str):
        """Start/end logits of every feature. One process: the pipeline's forward pass
        (:func:`odqa.reader.inference.forward_windows`: length-sorted batches, dynamic padding,
        ``inference_mode``), so a reader answers the same in `train-mrc` and `odqa infer`, at its speed.
        Several processes: the Trainer's sharded loop."""
        if self.args.world_size == 1 and self.processing_class is not None:
            return self._forward_windows(features, metric_key_prefix)
        dataloader = self.get_eval_dataloader(model_inputs(features)) if description == "Evaluation" \
            else self.get_test_dataloader(model_inputs(features))
        start = time.time()
        compute_metrics, self.compute_metrics = self.compute_metrics, None  # it scores answers, not logits
        try:
            output = self.evaluation_loop(dataloader, description=description, prediction_loss_only=False,
                                          metric_key_prefix=metric_key_prefix)
        finally:
            self.compute_metrics = compute_metrics
        batch = self.args.eval_batch_size * self.args.world_size
        output.metrics.update(speed_metrics(metric_key_prefix, start, num_samples=output.num_samples,
                                            num_steps=math.ceil(output.num_samples / batch)))
        return output

    def _forward_windows(self, features, metric_key_prefix: str) -> PredictionOutput:
        from odqa.reader.inference import forward_windows

        start = time.time()
        batch = self.args.eval_batch_size
        logits = forward_windows(self.model, self.processing_class, features, batch, device=self.args.device,
                                 show_progress=not self.args.disable_tqdm)
        metrics = speed_metrics(metric_key_prefix, start, num_samples=len(features),
                                num_steps=math.ceil(len(features) / batch))
        names = features.column_names if hasattr(features, "column_names") else list(features)
        if "start_positions" in names and "end_positions" in names and len(features):
            smoothing = float(getattr(self.model.config, "label_smoothing_factor", 0.0) or 0.0)
            metrics[f"{metric_key_prefix}_loss"] = windows_span_loss(
                logits, features["start_positions"], features["end_positions"], smoothing)
        return PredictionOutput(predictions=logits, label_ids=None, metrics=metrics)

    def _answers(self, examples, features, output, prefix: str, output_dir: str | None):
        logits = output.predictions
        if isinstance(logits, tuple) and len(logits) > 2:  # e.g. hidden states kept by the model
            logits = logits[:2]
        return self.post_process_function(examples, features, logits, output_dir=output_dir, prefix=prefix)

    def evaluate(self, eval_dataset=None, eval_examples=None, ignore_keys=None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        features = self.eval_dataset if eval_dataset is None else eval_dataset
        examples = self.eval_examples if eval_examples is None else eval_examples
        self._memory_tracker.start()
        output = self._logits(features, "Evaluation", metric_key_prefix)
        metrics = dict(output.metrics)
        if self.post_process_function is not None and examples is not None:
            predictions, nbest = self._answers(examples, features, output, prefix=None,
                                               output_dir=self.predictions_dir)
            metrics.update(self._score(predictions, examples, metric_key_prefix, nbest))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        self._memory_tracker.stop_and_update_metrics(metrics)
        return metrics

    def _score(self, predictions: dict[str, str], examples, prefix: str,
               nbest: dict[str, list[dict]] | None = None) -> dict[str, float]:
        """``{prefix}_exact_match``/``{prefix}_f1`` by ``metric``, or whatever ``compute_metrics`` returns.

        When some questions have no answer (SQuAD 2.0 / KLUE-MRC ``is_impossible``) they are scored too, with
        SQuAD 2.0 accounting (:meth:`_score_with_unanswerable`), instead of being left out."""
        if self.compute_metrics is not None:
            from transformers import EvalPrediction

            formatted = [{"id": qid, "prediction_text": text} for qid, text in predictions.items()]
            references = [{"id": ex["id"], "answers": ex["answers"]} for ex in examples]
            scores = self.compute_metrics(EvalPrediction(predictions=formatted, label_ids=references))
            return {k if k.startswith(f"{prefix}_") else f"{prefix}_{k}": v for k, v in scores.items()}
        if nbest is not None and any(ex.get("is_impossible") for ex in examples):
            return self._score_with_unanswerable(examples, nbest, prefix)
        references = {ex["id"]: ex["answers"]["text"] for ex in examples}
        scores = answer_metrics(predictions, references, metric=self.metric)
        return {f"{prefix}_exact_match": scores["exact_match"], f"{prefix}_f1": scores["f1"]}

    def _score_with_unanswerable(self, examples, nbest: dict[str, list[dict]], prefix: str) -> dict[str, float]:
        """SQuAD 2.0 figures (``korquad_v2``/``squad_v2`` rules) as `odqa choose-threshold` computes them: the
        reader always answers, so ``exact_match``/``f1`` count every unanswerable question as missed; ``best_*``
        is what the best no-answer threshold on the best answer's ``no_answer_score`` reaches, with HasAns EM,
        NoAns accuracy and answer rate at that threshold."""
        from odqa.reader.abstention import choose_threshold

        record = choose_threshold(list(examples), nbest, f"{self.metric}_v2", source="eval n-best")
        always, chosen = record["always_answer"], record["with_threshold"]
        return {
            f"{prefix}_exact_match": always["exact"], f"{prefix}_f1": always["f1"],
            f"{prefix}_has_ans_exact_match": always.get("HasAns_exact", 0.0),
            f"{prefix}_has_ans_f1": always.get("HasAns_f1", 0.0),
            f"{prefix}_has_ans_total": record["has_answer"], f"{prefix}_no_ans_total": record["no_answer"],
            f"{prefix}_best_exact_match": chosen["exact"], f"{prefix}_best_f1": chosen["f1"],
            f"{prefix}_best_threshold": record["no_answer_threshold"],
            f"{prefix}_best_has_ans_exact_match": chosen.get("HasAns_exact", 0.0),
            f"{prefix}_best_no_ans_accuracy": chosen["NoAns_exact"],
            f"{prefix}_best_answer_rate": chosen["answer_rate"],
        }

    def predict(self, predict_dataset, predict_examples=None, ignore_keys=None,
                metric_key_prefix: str = "test") -> PredictionOutput:
        """Logits → answers for test examples (no labels needed); scores them if they have answers.

        The forward pass is :meth:`_logits`' (the pipeline's on one process).
        """
        output = self._logits(predict_dataset, "Prediction", metric_key_prefix)
        metrics = dict(output.metrics)
        predictions = None
        if self.post_process_function is not None and predict_examples is not None:
            predictions, _ = self._answers(predict_examples, predict_dataset, output, prefix=None,
                                           output_dir=self.predictions_dir)
            if any(ex["answers"]["text"] for ex in predict_examples):
                metrics.update(self._score(predictions, predict_examples, metric_key_prefix))
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics)
        return PredictionOutput(predictions=predictions, label_ids=None, metrics=metrics)


def windows_span_loss(logits, start_positions, end_positions, label_smoothing: float = 0.0) -> float:
    """The span loss of :func:`odqa.reader.modeling.span_loss`, each window over its own tokens (no padding
    in the softmax, so the figure does not depend on how windows were batched), averaged over windows."""
    import torch

    from odqa.reader.modeling import span_loss

    starts, ends = logits
    losses = [float(span_loss(torch.from_numpy(start)[None], torch.from_numpy(end)[None],
                              torch.tensor([int(s)]), torch.tensor([int(e)]), label_smoothing))
              for start, end, s, e in zip(starts, ends, start_positions, end_positions)
              if 0 <= int(s) < len(start) and 0 <= int(e) < len(end)]  # HF ignores positions outside the window
    return sum(losses) / len(losses) if losses else float("nan")
