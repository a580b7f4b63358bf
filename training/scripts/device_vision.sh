#!/usr/bin/env bash
# The face encoder trained on a lent GPU: the two members of the shipped vision ensemble (the
# architecture that fits ~2 ms per face on one CPU thread), seven labels, FER2013 train with the
# seed-0 stratified holdout selecting each member's epoch.  Optionally distilled from wider
# teachers trained first on the same GPU.
#
# Two halves, because the device machine reaches no network and `../shared` does not travel:
#
#   bash training/scripts/device_vision.sh pack [DATA_ROOT]
#       here, from the repo root: writes .carry/fer2013_train.zip (FER2013 train, seven labels,
#       the JPEGs stored uncompressed, 47 MiB) and checks that the tree that travels stays
#       under the device tool's 64 MiB.
#
#   bash training/scripts/device_vision.sh run
#       on the device machine, from the repo root, with `.carry` carried (run tool: carry
#       [".carry"], timeout_s 600).  Needs only torch, OpenCV, numpy, scipy, matplotlib and
#       tqdm, which the device image has.  Trains the MEMBERS side by side on the one GPU
#       (default "a:0 s1:2": member a, stride-2 stem, widths 32-256, seed 0, and member s1,
#       stride-1 stem, widths 16-128, seed 2), STUDENT_EPOCHS each, with the recipe of
#       MODEL_CARD.md.  With TEACHERS=K > 0 it first trains K teachers (ResNet 2-2-2-2, widths
#       64-512, stride-1 stem; seeds 1..K) side by side for TEACHER_EPOCHS, and the members are
#       distilled from their mirror-TTA ensemble.
#       Into $OUT: member_ARCH_seedSEED_best.pt per member (weights only, a 11 MB, s1 3 MB),
#       logs.tar.gz (every run's metrics.csv, curves.png and stdout).
#       Then here (MODEL_CARD.md, "Reproduce"): emotion-export --from-bundle B --vision
#       A.pt,B.pt[,...] --vision-tta flip|none --int8-faces DATA/fer2013/train,
#       emotion-train stream-fusion on that bundle, emotion-eval faces and emotion-eval stream.
#
# Measured on the H200 (bf16 autocast, cudnn autotuning): the two members side by side take
# ~4.5 s per epoch each (50 epochs in 246 s, start-up included); three teachers side by side
# ~9 s per epoch; a distilled member ~11 s per epoch (two side by side, three teachers' mirror
# forwards in each step).  The 15 minutes of device time a session gets fit the members alone
# (TEACHERS=0, the default) with room to spare; teachers (TEACHERS=3, TEACHER_EPOCHS=7,
# STUDENT_EPOCHS=5) fitted only a few epochs and scored below the members trained alone
# (EXPERIMENTS.md beside the model card).  Every run stops at DEADLINE seconds after the start
# (555), keeping its best epoch so far.
# Knobs (environment): MEMBERS ("a:0 s1:2"), TEACHERS (0), TEACHER_EPOCHS (25), STUDENT_EPOCHS
# (50), DISTILL_WEIGHT (0.7), DISTILL_T (4), DEADLINE (555), DEVICE (cuda), BF16 (1), SMOKE=1 for
# a tiny dry run of `run` on any machine.
set -euo pipefail
cmd="${1:-}"
ROOT="$(pwd)"
[ -d "$ROOT/training/emotion_training" ] || { echo "device_vision.sh: run it from the repo root" >&2; exit 2; }
CARRY="$ROOT/.carry"
LABELS="angry disgust fear happy neutral sad surprise"

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
  T0=$(date +%s)
  OUT="${OUT:-$ROOT/training/runs/device_vision}"
  DEVICE="${DEVICE:-cuda}"
  K="${TEACHERS:-0}"; TE="${TEACHER_EPOCHS:-25}"; SE="${STUDENT_EPOCHS:-50}"; DL="${DEADLINE:-555}"
  W="${DISTILL_WEIGHT:-0.7}"; T="${DISTILL_T:-4}"
  TW="64,128,256,512"; CAP=""
  if [ "${SMOKE:-0}" = 1 ]; then TE=1; SE=1; TW="8,8,16,16"; CAP="--max-faces 300"; fi
  # MEMBERS: ARCH:SEED words; ARCH a = stride-2 stem, widths 32-256; s1 = stride-1 stem,
  # widths 16-128 (the shipped ensemble's two architectures)
  read -r -a MEM <<< "${MEMBERS:-a:0 s1:2}"
  declare -A ARCH=([a]="" [s1]="--vision-stem-stride 1 --vision-widths 16,32,64,128")
  for m in "${MEM[@]}"; do
    [[ "$m" =~ ^(a|s1):[0-9]+$ ]] || { echo "device_vision.sh: MEMBERS word '$m' is not a:SEED or s1:SEED" >&2; exit 2; }
  done
  [ -f "$CARRY/fer2013_train.zip" ] || { echo "device_vision.sh: no .carry/fer2013_train.zip (pack it here, carry .carry)" >&2; exit 2; }
  WORK="$(mktemp -d)"; mkdir -p "$OUT" "$WORK/data/fer2013" "$WORK/logs"
  trap 'rm -rf "$WORK"' EXIT      # unpacked faces and checkpoints: what matters is in $OUT
  python3 -m zipfile -e "$CARRY/fer2013_train.zip" "$WORK/data/fer2013/"
  export PYTHONPATH="$ROOT/src/emotion_perception:$ROOT/src/emotion_fusion:$ROOT/src/emotion_runtime:$ROOT/training${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONUNBUFFERED=1
  AMP=""; [ "${BF16:-1}" = 1 ] && AMP="--bf16"
  TRAIN="python3 -m emotion_training.train vision --data $WORK/data --device $DEVICE --holdout-seed 0 --labels ${LABELS// /,} --quiet $AMP $CAP"
  REC="--optimizer adamw --lr 0.002 --weight-decay 0.05 --batch-size 128 --balance-power 0.75 --label-smoothing 0.1 --patience 1000 --threads 4"
  left() { echo $(( DL - ($(date +%s) - T0) )); }
  # waits for a run started under `timeout`; one stopped by it (status 124) still counts when it
  # saved a best.pt (its best epoch so far)
  finish() {  # finish DIR PID
    local rc=0; wait "$2" || rc=$?
    if [ "$rc" = 124 ] && [ -f "$1/best.pt" ]; then echo "[run] $(basename "$1"): stopped at the deadline, keeping its best epoch so far"; return 0; fi
    return "$rc"
  }
  python3 -c "import torch; print('[run] torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  DISTILL=""
  if [ "$K" -gt 0 ]; then
    echo "[run] $K teachers x $TE epochs (widths $TW, stride-1 stem), side by side; $(left)s left"
    pids=()
    for s in $(seq 1 "$K"); do
      timeout "$(( $(left) / 2 ))" $TRAIN $REC --seed "$s" --epochs "$TE" --vision-stem-stride 1 \
        --vision-widths "$TW" --out "$WORK/teacher$s" > "$WORK/logs/teacher$s.log" 2>&1 &
      pids+=($!)
    done
    for s in $(seq 1 "$K"); do finish "$WORK/teacher$s" "${pids[$((s - 1))]}" || { tail -20 "$WORK"/logs/teacher*.log; exit 1; }; done
    for s in $(seq 1 "$K"); do echo "[run] teacher$s: $(tail -n 1 "$WORK/logs/teacher$s.log")"; done
    teachers=$(for s in $(seq 1 "$K"); do printf '%s,' "$WORK/teacher$s/best.pt"; done)
    DISTILL="--teacher ${teachers%,} --distill-weight $W --distill-temperature $T"
  fi
  echo "[run] ${#MEM[@]} members (${MEM[*]}) x $SE epochs${DISTILL:+, distilled from the teachers (weight $W, temperature $T)}, side by side; $(left)s left"
  pids=()
  for m in "${MEM[@]}"; do
    a="${m%%:*}"; s="${m##*:}"
    # shellcheck disable=SC2086
    timeout "$(( $(left) - 15 > 30 ? $(left) - 15 : 30 ))" $TRAIN $REC --seed "$s" ${ARCH[$a]} --epochs "$SE" \
      $DISTILL --out "$WORK/member_${a}_seed$s" > "$WORK/logs/member_${a}_seed$s.log" 2>&1 &
    pids+=($!)
  done
  i=0; for m in "${MEM[@]}"; do
    d="$WORK/member_${m%%:*}_seed${m##*:}"
    finish "$d" "${pids[$i]}" || { tail -20 "$WORK"/logs/member_*.log; exit 1; }; i=$((i + 1))
  done
  for m in "${MEM[@]}"; do
    d="member_${m%%:*}_seed${m##*:}"
    python3 - "$WORK/$d/best.pt" "$OUT/${d}_best.pt" <<'PY'
import sys, torch
ck = torch.load(sys.argv[1], map_location='cpu', weights_only=True)
for k in ('optimizer', 'scheduler', 'rng'):
    ck.pop(k, None)
torch.save(ck, sys.argv[2])
print(f"[run] best epoch {ck['best_epoch']}, holdout UAR {ck['best_uar']:.3f} -> {sys.argv[2]}")
PY
  done
  (cd "$WORK" && tar czf "$OUT/logs.tar.gz" --exclude='*.pt' --exclude=data ./*)
  ls -la "$OUT"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
