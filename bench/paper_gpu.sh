#!/usr/bin/env bash
# The paper preset on one GPU in one go, sized for a 10-minute call of the device tool:
#   1. training step throughput, paper preset, ours against the release-style configuration;
#   2. one paper-preset model of every mesh in MESH_DIR (bf16): PROBE steps, then resumed to as
#      many steps as fit in TRAIN_S seconds in all (at most MAX_STEPS, default the paper's 4000);
#   3. bench/thin_parts.py on it at N = 256: area, genus, parts, manifold, CD and F@0.005.
# Each stage runs even if an earlier one failed, so one call shows as much as it can.
#
#   bash bench/paper_gpu.sh MESH_DIR OUT [TRAIN_S] [PROBE] [PRESET]
#
# Needs the backend importable (PYTHONPATH=backend, or the venv) and a CUDA torch; PRESET (default
# paper) and a small TRAIN_S make a CPU smoke run of the same script. OUT gets the tables, the loss
# log and, gzipped, the reconstructions of the meshes named in KEEP (default featuretype tray_bottom).
set -uo pipefail
mesh_dir=$1 out=$2 train_s=${3:-240} probe=${4:-250} preset=${5:-paper} max_steps=${MAX_STEPS:-4000}
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

stamp "throughput ($preset, ours vs release)"
$py bench/train_throughput.py --presets "$preset" --variants ours release --steps 10 --warmup 3 \
  --json "$out/throughput.json" || echo "FAILED throughput"

stamp "train $preset on ${#meshes[@]} meshes, ${train_s}s budget"
# A first short run times one step (its "in X s" is the loop alone; the rest of its wall time, the
# preparation and loading, is charged again to the second run), then one resumed run takes as many
# further steps as fit in what is left of the budget.
train() {
  $py -m compact_sdf train --preset "$preset" --set train.precision=bf16 --cache "${CACHE_DIR:-$model.cache}" \
    --out "$model" --no-progress --steps "$@" "${meshes[@]}"
}
t0=$(date +%s)
if first=$(train "$probe" | tee /dev/stderr); then
  wall=$(($(date +%s) - t0))
  loop=$(echo "$first" | sed -n 's/.* in \([0-9.]*\) s;.*/\1/p' | tail -1)
  total=$($py -c "print(min($max_steps, $probe + max(0, int(($train_s - 2 * $wall + $loop) * $probe / $loop))))")
  stamp "$probe steps: ${wall}s wall, ${loop}s in the loop; resuming to $total steps"
  [ "$total" -gt "$probe" ] && { train "$total" --resume || echo "FAILED train (resume)"; }
else
  echo "FAILED train"
fi
cp "$model/log.csv" "$model/model.json" "$out/" 2>/dev/null

stamp "thin parts at N = 256"
# shellcheck disable=SC2086
$py bench/thin_parts.py --model "$model" --mesh-dir "$mesh_dir" --meshes $names --resolution 256 \
  --cd 200000 --no-lattice --device auto --save-dir "$model/meshes" | tee "$out/thin_parts.md" \
  || echo "FAILED thin parts"
for name in $keep; do
  gzip -c "$model/meshes/$name.ply" >"$out/$name.ply.gz" 2>/dev/null || rm -f "$out/$name.ply.gz"
done
stamp "end"
