#!/usr/bin/env bash
# bench/interactive.py on one GPU in one call (sized for a 10-minute remote command): both meshing
# paths on the same model (numpy against tensors, N = 64-256), then the latency table (in one warm
# process and through a real service on loopback: reconstruct N = 64-512, slider and four-shape
# blend). The model: PRESET (default paper) trained on the GPU to STEPS in bf16, four shared meshes;
# the service trains its own copy with the same overrides. Too few steps leave a noisy field whose
# meshes and joins cost more than a trained model's (the smoke run below is slow for that reason).
#
#   COMPACT_SDF_MESHES=MESH_DIR bash bench/interactive_gpu.sh OUT [PRESET] [STEPS]
#
# Needs the backend importable (PYTHONPATH=backend, or the venv) and a CUDA torch; a CPU smoke run:
# DEVICE=cpu bash bench/interactive_gpu.sh OUT tiny 20.
set -uo pipefail
out=$1 preset=${2:-paper} steps=${3:-600}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
mkdir -p "$out"
sets=(--train-set "train.steps=$steps" --train-set train.precision=bf16)
stamp() { echo "== $(date -u +%T) $*"; }

stamp "device"
$py -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
stamp "meshing: numpy against tensors ($preset, $steps steps)"
$py bench/interactive.py meshing --device "$device" --preset "$preset" "${sets[@]}" --repeat 3 --threads 8 \
  --out "$out/interactive_meshing.json" || echo "FAILED meshing"
stamp "latency"
$py bench/interactive.py latency --device "$device" --preset "$preset" "${sets[@]}" --repeat 5 --threads 8 \
  --out "$out/interactive_latency.json" || echo "FAILED latency"
stamp "end"
