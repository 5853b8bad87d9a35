#!/usr/bin/env bash
# The students study (STUDENTS.md): layer-rule screen, full students, distillation, int8, table.
#
#   TEACHER=outputs/mangaassist/minilm-focal_weighted-s0/<time> \
#     bash experiments/model_selection/run_students.sh screen full kd l2 export hub table
#
# TEACHER is the fine-tuned 6-layer run (`make train`). Every student trains on that run's own
# split files (data=files: the same train/val/test messages, no regeneration or re-audit), so
# the teacher has seen none of a student's validation or test messages and its logits cache
# lines up with the student's training split. Each stage can be rerun alone; a run folder that
# already holds metrics.json is kept, not retrained. THREADS=1 when another job shares the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/students}
THREADS=${THREADS:-null}
: "${TEACHER:?set TEACHER to the 6-layer run directory (make train prints it)}"
D=$TEACHER/data
DATA="data=files data.train=$D/train.jsonl data.val=$D/val.jsonl data.test=$D/test.jsonl"
# The teacher's label order (data=files would sort them; distillation matches logits by index).
LABELS=$(tr -d ' \n' < "$TEACHER/labels.json" | tr '"' "'")
DATA="$DATA data.labels=$LABELS data.module.rare_below=0.05 data.name=mangaassist threads=$THREADS"
# The screen: a third of one epoch each, validation only (no test, no golden, no calibration).
SCREEN="trainer.max_epochs=1 +trainer.limit_train_batches=0.33 test_after_fit=false evaluate=false"
CACHE=$OUT/teacher_logits.safetensors

train() {  # train NAME OVERRIDES...: one run into $OUT/NAME, skipped when already finished
  local name=$1
  shift
  if [[ -f $OUT/$name/metrics.json ]]; then
    echo "[STUDY] keep $OUT/$name (finished)"
    return
  fi
  echo "[STUDY] train $name $*"
  # shellcheck disable=SC2086  # $DATA holds several overrides
  $PY train.py $DATA model.name="$name" "hydra.run.dir=$OUT/$name" "$@"
}

for stage in "$@"; do
  case $stage in
    screen)  # which layers: every rule per depth, ranked on validation macro F1
      for k in 3 2; do for rule in bottom top alternate spread; do
        # shellcheck disable=SC2086
        train "screen_l${k}_$rule" model=minilm_l$k model.keep_layers=$rule $SCREEN
      done; done ;;
    full)  # the 3-layer student, full budget, with the rule the screen chose (its config default)
      train minilm_l3 model=minilm_l3 ;;
    kd)  # the same student distilled from the teacher (T=2, alpha=0.5: conf/distill/default.yaml)
      train minilm_l3_kd model=minilm_l3 distill.teacher="$TEACHER" distill.cache="$CACHE" ;;
    l2)
      train minilm_l2 model=minilm_l2 ;;
    l2kd)
      train minilm_l2_kd model=minilm_l2 distill.teacher="$TEACHER" distill.cache="$CACHE" ;;
    export)  # the serving bundle (fp32 + checked int8) of the teacher and every student
      for run in "$TEACHER" "$OUT"/minilm_l*; do
        [[ -f $run/metrics.json && ! -f $run/export/manifest.json ]] || continue
        $PY -m mangaassist.cli export "$run" --quantize int8
      done ;;
    hub)  # the three hub encoders: each stops at once without its weights ("not available")
      $PY train.py experiment=model_selection 'model=tinybert,distilbert,roberta_base' \
        "hydra.sweep.dir=$OUT/unavailable" || true ;;
    table)  # every bundle timed in one process, then the table and the frontier plot
      $PY -m mangaassist.cli compare models "$TEACHER" "$OUT"/minilm_l* "$OUT"/unavailable \
        --served --out experiments/model_selection/students ;;
    screen-table)
      $PY -m mangaassist.cli compare "$OUT"/screen_* --by model.keep_layers \
        --out experiments/model_selection/students/screen ;;
    *) echo "unknown stage '$stage' (screen full kd l2 l2kd export hub table screen-table)" >&2
       exit 2 ;;
  esac
done
