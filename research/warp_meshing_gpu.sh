#!/usr/bin/env bash
# research/warp_meshing.py on CUDA: the product's extraction against Warp's sparse and dense marching
# cubes on one GPU, N = 64..512 (dense up to 256), one command from the repository root:
#
#   WARP_WHEEL=path/to/warp_lang-1.18.0-py3-none-manylinux_2_28_x86_64.whl bash research/warp_meshing_gpu.sh [JSON]
#
# Needs a CUDA torch with the backend importable (the venv, or PYTHON=python3 with torch installed),
# the trained model out/interactive_preview (ignored by git: carry it to a lent machine) and the Warp
# wheel, installed here with `pip install --no-deps --target` so no venv changes. A lent device machine
# has no network and takes a 64 MiB tree: the wheel (149 MB; warp.so alone 285 MB) must already be
# on it, or WARP_SITE must point at an unpacked copy there.
set -euo pipefail
py=${PYTHON:-.venv/bin/python}
site=${WARP_SITE:-/tmp/warp_site}
if [ ! -f "$site/warp/__init__.py" ]; then
  "$py" -m pip install -q --no-deps --target "$site" "${WARP_WHEEL:?set WARP_WHEEL to the warp-lang 1.18 wheel}"
fi
"$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
PYTHONPATH="$site:backend${PYTHONPATH:+:$PYTHONPATH}" "$py" research/warp_meshing.py --device cuda \
  --resolutions 64 128 256 512 --dense-max 256 --budget 300 --json "${1:-out/research/warp_meshing_cuda.json}"
