#!/usr/bin/env bash
# Issue 13's lever ablation (ABLATION.md): one short recipe, one lever added per row.
#
#   bash experiments/hard_messages/run_ablation.sh base banks romaji head_tail secondary secondary_w5 vocab slices
#
# Every row trains the default model (embedded all-MiniLM-L6-v2, focal_weighted, seed 0) on
# the default 55,000-message corpus for ONE epoch instead of three (the CPU budget: seven rows
# in the time of about two and a half full runs), then the usual post-training evaluation (calibration on
# validation, test, golden set with its script/length slices). Rows are compared on
# validation (`slices` stage: every run scored on the same validation file); the golden
# slices are reported beside them. A row whose folder already holds metrics.json is kept.
#
#   base       the corpus before the Japanese banks (commit $BASE_COMMIT), levers off;
#              trained from a detached worktree of that commit
#   banks      the current corpus (Japanese script, romaji and contrast banks), levers off
#   romaji     banks + data.module.text_preprocess=romaji
#   head_tail  romaji + data.module.truncation=head_tail (first 64 and last word pieces)
#   secondary  romaji + secondary.weight=0.5 (the multi-label head)
#   secondary_w5  romaji + secondary.weight=5 (the BCE is a mean over the 10 intents: 5 puts
#              it on the primary loss's scale, so the shared encoder keeps the other asks)
#   vocab      banks + vocab_extension.size=1000 (the training split's 1,000 most frequent
#              Japanese words and characters as tokens; script kept, no romaji)
#
# THREADS=1 (the default here) lets two rows share a two-core machine, each pinned to a core
# by the caller (taskset -c 0 / -c 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${OUT:-$ROOT/outputs/hard_messages}
THREADS=${THREADS:-1}
BASE_COMMIT=${BASE_COMMIT:-d9887a2}  # main just before the banks were merged
RECIPE="trainer.max_epochs=1 threads=$THREADS"

train() {  # train NAME OVERRIDES...: one run into $OUT/NAME, skipped when already finished
  local name=$1
  shift
  if [[ -f $OUT/$name/metrics.json ]]; then
    echo "[ABLATION] keep $OUT/$name (finished)"
    return
  fi
  echo "[ABLATION] train $name $*"
  # shellcheck disable=SC2086  # $RECIPE holds several overrides
  $PY train.py $RECIPE "run_name=abl-$name" "hydra.run.dir=$OUT/$name" "$@"
}

# Every lever named on each row (the data config's defaults now hold the chosen ones).
levers() {  # levers TEXT_PREPROCESS TRUNCATION SECONDARY_WEIGHT VOCAB_SIZE
  echo "data.module.text_preprocess=$1 data.module.truncation=$2 secondary.weight=$3" \
    "vocab_extension.size=$4"
}

for stage in "$@"; do
  case $stage in
    base)
      tree=$OUT/.base-tree
      [[ -d $tree ]] || git worktree add --detach "$tree" "$BASE_COMMIT"
      # The worktree's own train.py and package (this venv's editable install follows cwd);
      # that commit has none of the levers, so it names none.
      (cd "$tree" && train base) ;;
    # shellcheck disable=SC2046  # levers prints several overrides
    banks) train banks $(levers none first 0 0) ;;
    romaji) train romaji $(levers romaji first 0 0) ;;
    head_tail) train head_tail $(levers romaji head_tail 0 0) ;;
    secondary) train secondary $(levers romaji first 0.5 0) ;;
    secondary_w5) train secondary_w5 $(levers romaji first 5 0) ;;
    vocab) train vocab $(levers none first 0 1000) vocab_extension.min_count=5 ;;
    slices)  # every finished row on one validation file (the banks row's split)
      $PY experiments/hard_messages/ablation_table.py "$OUT" --val "$OUT/banks/data/val.jsonl" \
        --out experiments/hard_messages ;;
    *) echo "unknown stage: $stage (base banks romaji head_tail secondary secondary_w5 vocab slices)" >&2; exit 2 ;;
  esac
done
