#!/usr/bin/env bash
# Fine-tune the shipped Korean reader (`e5-small-korquad`: multilingual-e5-small trained on KorQuAD 1.0) on
# your own questions — here the 193 of data/sample/train.json — and compare it on the sample's 85 validation
# questions before and after: the transfer a team with a small domain set cares about.
#
# The options competition teams use are all here: staged freezing (--freeze_type embedding for the first half
# epoch), step-wise evaluation with EM-gated checkpoints (a checkpoint is kept only when eval loss went down,
# or, loss not down, exact match went up; the last one kept is loaded at the end: with 85 validation questions
# the loss is the steadier guide, so that may not be the evaluation with the highest EM), retrieved negative
# passages labelled "no answer".
# CPU speed-ups: encoder dropout off (--attention_dropout 0 --hidden_dropout 0: PyTorch's fused attention) and
# the 250k-row word-embedding matrix frozen (--freeze_word_embeddings); see BENCHMARKS.md.
# Custom heads: `--head lstm_ln` (or cnn, ...) puts a new, untrained head on the trained encoder; it needs more
# data than 193 questions to catch up with the trained linear head, so this example keeps the linear one.
# From scratch instead: --model e5-small (or klue/roberta-large on a GPU, without the CPU speed-ups).
# TPU / multi-GPU: `accelerate launch train_mrc_v2.py <same options>`.
# The reader lands in models/example_reader/korquad_sample_finetune (--run_name; a second run goes to ...2).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT=models/example_reader
EVAL=(--eval_dataset data/sample/validation.json)
for arg in "$@"; do [ "${prev:-}" = "--output_dir" ] && OUT="$arg"; prev="$arg"; done

mkdir -p "$OUT"
echo "== before: e5-small-korquad on data/sample/validation.json (gold passage)"
"$PYTHON" train_mrc_v2.py --do_eval --model e5-small-korquad "${EVAL[@]}" \
  --output_dir "$OUT/before" --overwrite_output_dir > "$OUT.before.log" 2>&1 \
  || { cat "$OUT.before.log"; exit 1; }

echo "== fine-tuning on data/sample/train.json"
"$PYTHON" train_mrc_v2.py \
  --run_name korquad_sample_finetune \
  --description "example: the shipped KorQuAD reader fine-tuned on the sample's training questions" \
  --output_dir "$OUT" \
  --model e5-small-korquad \
  --train_dataset data/sample/train.json \
  "${EVAL[@]}" \
  --num_train_epochs 1 \
  --learning_rate 2e-5 \
  --warmup_steps 0.1 \
  --weight_decay 0.01 \
  --max_seq_len 384 \
  --doc_stride 128 \
  --evaluation_strategy steps \
  --eval_steps 10 \
  --logging_steps 5 \
  --save_total_limit 1 \
  --freeze_type embedding \
  --freeze_epoch 0.5 \
  --attention_dropout 0 \
  --hidden_dropout 0 \
  --freeze_word_embeddings \
  --negatives_per_question 1 \
  --seed 42 \
  "$@"

"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
before = json.loads((out / "before" / "run_info.json").read_text(encoding="utf-8"))["results"]["eval"]
runs = sorted((p for p in out.glob("korquad_sample_finetune*") if (p / "run_info.json").is_file()),
              key=lambda p: p.stat().st_mtime)
after = json.loads((runs[-1] / "run_info.json").read_text(encoding="utf-8"))["results"]["eval"]
print(f"== data/sample/validation.json, gold passage: before EM {before['eval_exact_match']:.2f} / F1 "
      f"{before['eval_f1']:.2f}; after fine-tuning EM {after['eval_exact_match']:.2f} / F1 {after['eval_f1']:.2f} "
      f"({runs[-1]})")
EOF
