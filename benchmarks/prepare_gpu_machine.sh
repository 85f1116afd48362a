#!/usr/bin/env bash
# Run here (with network to PyPI) before a GPU machine's run: puts into .gpu_check/ (ignored
# by git; carry it to the machine) the Python packages a bare GPU image may lack (installed
# there with `pip install --no-index --find-links .gpu_check/wheels ...`), and the published
# pixelNeRF code with the wheels its trainer needs (benchmarks/published_train_bench.py runs
# it beside ours). None of it is committed.
set -eu
cd "$(dirname "$0")/.."

# download DIR PACKAGE...: CPython 3.12 x86-64 builds (the device image), no dependencies.
download() {
    local dir=$1; shift
    mkdir -p "$dir"
    for package in "$@"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_28_x86_64 -d "$dir" "$package"
    done
}

# jsonschema and its dependencies (the image has attrs).
download .gpu_check/wheels jsonschema jsonschema-specifications referencing rpds-py

# The published code, as its repository has it (a bare mirror; never committed here).
PUBLISHED_MIRROR=${PUBLISHED_MIRROR:-/work/.mirror/sxyu+pixel-nerf/repo}
rm -rf .gpu_check/published
if git --git-dir="$PUBLISHED_MIRROR" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    mkdir -p .gpu_check/published
    git --git-dir="$PUBLISHED_MIRROR" archive HEAD | tar -x -C .gpu_check/published
    echo "published code: $PUBLISHED_MIRROR at $(git --git-dir="$PUBLISHED_MIRROR" rev-parse --short HEAD)"
else
    echo "published code: no git repository at $PUBLISHED_MIRROR (set PUBLISHED_MIRROR); not prepared"
fi
# What its train/train.py imports beyond torch, torchvision, numpy and imageio (the image
# has those); they are used only where the image lacks them (benchmarks/published_run.py).
# Left out: opencv (cv2, about 50 MB: a stand-in in benchmarks/published_run.py) and the
# packages only its evaluation and mesh scripts import.
#   pyhocon, pyparsing: its configuration files (HOCON) and pyhocon's parser;
#   dotmap: the renderer's outputs;
#   tensorboard, absl-py, protobuf: torch.utils.tensorboard's SummaryWriter, its log;
#   tqdm: the progress bar of its training loop.
rm -rf .gpu_check/published_wheels
download .gpu_check/published_wheels pyhocon pyparsing dotmap tensorboard absl-py protobuf tqdm
du -sh .gpu_check
