#!/usr/bin/env bash
# The paper preset on one GPU in one go, made to fit a 10-minute remote command:
#   1. training step throughput, paper preset, ours against the release-style configuration
#      (about 70 s on an H200; THROUGHPUT=0 skips it);
#   2. one paper-preset model of every mesh in MESH_DIR (bf16) trained to step STEPS, resuming
#      when MODEL_DIR already holds a checkpoint (a later call on the same warm machine). On an
#      H200, twelve shared meshes: 85 s to prepare and load, 0.116 s a step, so the default 1800
#      steps fit one call with the scoring and 4000 (the paper's) take two;
#   3. bench/thin_parts.py on its best.pt (the state with the lowest held-out check; the last
#      state when there is none) at N = 256: area, genus, parts, manifold, CD and F@0.005
#      (the KEEP meshes first; 6-8 s a mesh on an H200; SCORE=0 skips it).
#   4. (PAPER=1, a call of its own) bench/paper.py single on max_planck: the paper preset beside
#      the release-style configuration at equal precision (bf16), fidelity against time for both.
# Each stage runs even if an earlier one failed, so one call shows as much as it can. The steps
# curve is three calls on one warm machine with MODEL_DIR kept: STEPS = 1200, 2400, 4000.
#
#   bash bench/paper_gpu.sh MESH_DIR OUT [STEPS] [PRESET]
#
# Needs the backend importable (PYTHONPATH=backend, or the venv) and a CUDA torch; PRESET (default
# paper) and a few STEPS make a CPU smoke run of the same script. OUT gets the tables, the loss
# log and, gzipped, the reconstructions of the meshes named in KEEP (default featuretype tray_bottom).
set -uo pipefail
mesh_dir=$1 out=$2 steps=${3:-1800} preset=${4:-paper}
py=${PYTHON:-python3}
model=${MODEL_DIR:-$(mktemp -d)/model}
mkdir -p "$out"
meshes=("$mesh_dir"/*.ply)
keep=${KEEP:-featuretype tray_bottom}
# the kept meshes first, so a call cut short still scores them
names=$(for m in "${meshes[@]}"; do basename "$m" .ply; done | grep -vxF -f <(tr ' ' '\n' <<<"$keep"))
names="$keep $names"
stamp() { echo "== $(date -u +%T) $*"; }

stamp "device"
$py -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

if [ "${PAPER:-0}" = 1 ]; then
  stamp "paper.py single (paper preset vs release-style, bf16 both)"
  $py bench/paper.py single --mesh "$mesh_dir/max_planck.ply" --out "$out/paper_single" --preset "$preset" \
    --precision bf16 --evals 300,600,1200 --budget-s 200 --resolutions 256 \
    --extract-resolution 256 || echo "FAILED paper.py"
  stamp "end (PAPER=1)"
  exit 0
fi

if [ "${THROUGHPUT:-1}" != 0 ]; then
  stamp "throughput ($preset, ours vs release)"
  $py bench/train_throughput.py --presets "$preset" --variants ours release --steps 10 --warmup 3 \
    --json "$out/throughput.json" || echo "FAILED throughput"
fi

stamp "train $preset on ${#meshes[@]} meshes to step $steps"
resume=$([ -f "$model/checkpoint.pt" ] && echo --resume)
$py -m compact_sdf train --preset "$preset" --set train.precision=bf16 --cache "${CACHE_DIR:-$model.cache}" \
  --out "$model" --no-progress --steps "$steps" $resume "${meshes[@]}" || echo "FAILED train"
cp "$model/log.csv" "$model/model.json" "$out/" 2>/dev/null  # model.json: the held-out checks too

[ "${SCORE:-1}" = 0 ] && { stamp "end (SCORE=0)"; exit 0; }
stamp "thin parts at N = 256"
scored=$([ -f "$model/best.pt" ] && echo "$model/best.pt" || echo "$model")
# shellcheck disable=SC2086
$py bench/thin_parts.py --model "$scored" --mesh-dir "$mesh_dir" --meshes $names --resolution 256 \
  --cd 200000 --no-lattice --device auto --save-dir "$model/meshes" | tee "$out/thin_parts.md" \
  || echo "FAILED thin parts"
for name in $keep; do
  gzip -c "$model/meshes/$name.ply" >"$out/$name.ply.gz" 2>/dev/null || rm -f "$out/$name.ply.gz"
done
stamp "end"
