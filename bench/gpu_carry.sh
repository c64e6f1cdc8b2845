#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with what a lent GPU machine lacks for the GPU benchmarks: the backend's
# pure-Python and compiled dependencies as Python 3.12 x86_64 wheels at requirements.lock's
# versions (that image has torch, numpy, scipy, scikit-image and matplotlib), and the shared
# meshes (.whl/meshes). About 47 MB, under a remote call's 64 MB (name .whl in its carry). Then, on
# the GPU machine, one command:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
#   export PYTHONPATH=/tmp/site:backend PYTHONUNBUFFERED=1 COMPACT_SDF_MESHES=.whl/meshes &&
#   bash bench/interactive_gpu.sh $OUT        # or: bash bench/paper_gpu.sh .whl/meshes $OUT 1200
#
#   bash bench/gpu_carry.sh [MESH_DIR]        # MESH_DIR: default ../shared/meshes
set -euo pipefail
meshes=${1:-../shared/meshes}
names="trimesh libigl fcpw manifold3d fastapi starlette uvicorn pydantic pydantic_core annotated-types
typing-inspection"
mkdir -p .whl/meshes
for name in $names; do
  pin=$(grep -i "^$name==" requirements.lock)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$pin"
done
cp "$meshes"/*.ply .whl/meshes/
du -sh .whl
