#!/usr/bin/env bash
# The GPU route for the face encoder: wider teachers trained on a lent GPU, distilled into the
# shipped student architecture (the one that fits 2 ms per face on one CPU thread).  On 2 CPU
# cores every recipe plateaued at ~0.69 holdout (EXPERIMENTS.md beside the model card, "Tried and not adopted"); a
# teacher much better than the student needs GPU hours that a CPU session does not have.
#
# Two halves, because the device machine reaches no network and `../shared` does not travel:
#
#   bash training/scripts/device_vision.sh pack [DATA_ROOT]
#       here, from the repo root: writes .carry/fer2013_train.zip (FER2013 train, six labels,
#       the JPEGs stored uncompressed, ~44 MB) and checks that the tree that travels stays
#       under the device tool's 64 MiB.
#
#   bash training/scripts/device_vision.sh run
#       on the device machine, from the repo root, with `.carry` carried
#       (run tool: carry [".carry"], timeout_s 600).  Needs only torch, OpenCV, numpy, scipy and
#       tqdm, which the device image has.  Steps: a 1-epoch smoke run that fails fast; one timed
#       teacher epoch, from which the epoch counts are planned to fit the time budgets below (the
#       device tool allows 10 min per command, 15 min per session); TEACHERS teachers (ResNet
#       2-2-2-2, widths 64-128-256-512, stride-1 stem) in parallel on the one GPU, seeds
#       1..TEACHERS, all on the seed-0 holdout; then, in parallel, the two members of the shipped
#       ensemble's architecture, each distilled from the teachers' mirror-TTA ensemble: student_a
#       (stride-2 stem, widths 32-256) and student_s1 (stride-1 stem, widths 16-128).  Into $OUT:
#       student_a_best.pt and student_s1_best.pt (weights only, 11 + 3 MB), logs.tar.gz (every
#       run's metrics.csv, curves.png and best_summary.json) and run_logs.tar.gz (their stdout).
#       Then here: emotion-train fusion --vision-tta --init-vision with the same pair, then
#       emotion-export --vision student_a_best.pt,student_s1_best.pt --vision-tta flip
#       --int8-faces DATA/fer2013/train ... (as the shipped bundle, MODEL_CARD.md) and
#       emotion-eval faces.
#
# Every run trains with --bf16 (bfloat16 autocast; the H200's tensor cores) and cudnn autotuning,
# so more epochs fit the budget; BF16=0 trains in float32.
# Knobs (environment): TEACHERS (3), TEACHER_SECONDS (200) and STUDENT_SECONDS (240) of wall
# time, TEACHER_EPOCHS (80) and STUDENT_EPOCHS (60) as caps, DISTILL_WEIGHT (0.7), DISTILL_T (4),
# DEVICE (cuda), BF16 (1), SMOKE=1 for a tiny dry run of `run` on any machine.
set -euo pipefail
cmd="${1:-}"
ROOT="$(pwd)"
[ -d "$ROOT/training/emotion_training" ] || { echo "device_vision.sh: run it from the repo root" >&2; exit 2; }
CARRY="$ROOT/.carry"
LABELS="angry disgust fear happy neutral sad"

case "$cmd" in
pack)
  DATA="$(realpath "${2:-${EMOTION_DATA:-../shared/data}}")"
  [ -d "$DATA/fer2013/train" ] || { echo "device_vision.sh: no $DATA/fer2013/train" >&2; exit 2; }
  mkdir -p "$CARRY"
  python3 - "$DATA/fer2013/train" "$CARRY/fer2013_train.zip" $LABELS <<'EOF'
import pathlib, sys, zipfile
src, dst, labels = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
n = 0
with zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as z:
    for label in labels:
        for f in sorted((src / label).iterdir()):
            if f.is_file():
                z.write(f, f'train/{label}/{f.name}')
                n += 1
print(f'[pack] {n} faces -> {dst} ({dst.stat().st_size / 2**20:.1f} MiB)')
EOF
  tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  others=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
  carry=$(du -sb "$CARRY" | cut -f1)
  total=$(( tracked + ${others:-0} + carry ))
  echo "[pack] tree that travels: $(( total / 1048576 )) MiB of 64 (tracked $(( tracked / 1048576 )), untracked $(( ${others:-0} / 1048576 )), .carry $(( carry / 1048576 )))"
  [ "$total" -lt $(( 64 * 1048576 )) ] || { echo "device_vision.sh: over the 64 MiB the device tool carries" >&2; exit 1; }
  ;;
run)
  OUT="${OUT:-$ROOT/training/runs/device_vision}"
  DEVICE="${DEVICE:-cuda}"
  K="${TEACHERS:-3}"; TE="${TEACHER_EPOCHS:-80}"; SE="${STUDENT_EPOCHS:-60}"
  TS="${TEACHER_SECONDS:-200}"; SS="${STUDENT_SECONDS:-240}"
  W="${DISTILL_WEIGHT:-0.7}"; T="${DISTILL_T:-4}"
  TW="64,128,256,512"; CAP=""
  if [ "${SMOKE:-0}" = 1 ]; then TE=1; SE=1; TW="8,8,16,16"; CAP="--max-faces 300"; fi
  [ -f "$CARRY/fer2013_train.zip" ] || { echo "device_vision.sh: no .carry/fer2013_train.zip (pack it here, carry .carry)" >&2; exit 2; }
  WORK="$(mktemp -d)"; mkdir -p "$OUT" "$WORK/data/fer2013"
  trap 'rm -rf "$WORK"' EXIT      # unpacked faces and checkpoints: what matters is in $OUT
  python3 -m zipfile -e "$CARRY/fer2013_train.zip" "$WORK/data/fer2013/"
  export PYTHONPATH="$ROOT/src/emotion_perception:$ROOT/src/emotion_fusion:$ROOT/training${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONUNBUFFERED=1
  AMP=""; [ "${BF16:-1}" = 1 ] && AMP="--bf16"
  TRAIN="python3 -m emotion_training.train vision --data $WORK/data --device $DEVICE --holdout-seed 0 --labels ${LABELS// /,} --quiet $AMP $CAP"
  REC="--optimizer adamw --lr 0.002 --weight-decay 0.05 --batch-size 128 --balance-power 0.75 --label-smoothing 0.1 --patience 1000"
  python3 -c "import torch; print('[run] torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  echo "[run] smoke: 1 epoch on 600 faces"
  $TRAIN --max-faces 600 --epochs 1 --vision-widths 8,8,16,16 --out "$WORK/smoke" > "$OUT/smoke.log" 2>&1 \
    || { cat "$OUT/smoke.log"; exit 1; }
  $TRAIN $REC --epochs 1 --vision-stem-stride 1 --vision-widths "$TW" --threads 4 --out "$WORK/timing" \
    > "$OUT/timing.log" 2>&1 || { cat "$OUT/timing.log"; exit 1; }
  # one teacher epoch alone takes sec; K teachers share the GPU (assume no overlap), and each of
  # the two students' epochs runs the K teachers forward twice (mirror TTA), ~2K/3 teacher epochs
  read -r sec TE SE < <(python3 - "$WORK/timing/metrics.csv" "$K" "$TE" "$SE" "$TS" "$SS" <<'EOF'
import csv, sys
sec = float(list(csv.DictReader(open(sys.argv[1])))[-1]['seconds'])
k, te, se, ts, ss = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
print(f'{sec:.1f}', max(1, min(te, int(ts / (sec * k)))), max(1, min(se, int(ss / (2 * sec * (2 * k / 3 + 0.3))))))
EOF
)
  echo "[run] one teacher epoch: ${sec}s; $K teachers x $TE epochs (widths $TW, stride-1 stem), in parallel"
  pids=()
  for s in $(seq 1 "$K"); do
    $TRAIN $REC --seed "$s" --epochs "$TE" --vision-stem-stride 1 --vision-widths "$TW" --threads 4 \
      --out "$WORK/teacher$s" > "$OUT/teacher$s.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { tail -20 "$OUT"/teacher*.log; exit 1; }; done
  teachers=$(for s in $(seq 1 "$K"); do printf '%s,' "$WORK/teacher$s/best.pt"; done); teachers="${teachers%,}"
  for s in $(seq 1 "$K"); do echo "[run] teacher$s: $(tail -n 1 "$OUT/teacher$s.log")"; done
  echo "[run] 2 students x $SE epochs, distilled from the teachers (weight $W, temperature $T), in parallel"
  declare -A ARCH=([a]="" [s1]="--vision-stem-stride 1 --vision-widths 16,32,64,128")
  pids=()
  for st in a s1; do
    # shellcheck disable=SC2086
    $TRAIN $REC ${ARCH[$st]} --seed 0 --epochs "$SE" --teacher "$teachers" --distill-weight "$W" \
      --distill-temperature "$T" --threads 4 --out "$WORK/student_$st" > "$OUT/student_$st.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { tail -20 "$OUT"/student_*.log; exit 1; }; done
  for st in a s1; do
    python3 - "$WORK/student_$st/best.pt" "$OUT/student_${st}_best.pt" <<'EOF'
import sys, torch
ck = torch.load(sys.argv[1], map_location='cpu', weights_only=True)
for k in ('optimizer', 'scheduler'):
    ck.pop(k, None)
torch.save(ck, sys.argv[2])
print(f"[run] student best epoch {ck['best_epoch']}, holdout UAR {ck['best_uar']:.3f} -> {sys.argv[2]}")
EOF
  done
  (cd "$WORK" && tar czf "$OUT/logs.tar.gz" --exclude='*.pt' teacher* student_* smoke timing)
  mv "$OUT"/*.log "$WORK/" 2>/dev/null; (cd "$WORK" && tar czf "$OUT/run_logs.tar.gz" ./*.log)
  ls -la "$OUT"
  ;;
*)
  sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
