#!/usr/bin/env bash
# Run here (with network to PyPI) before the device call: puts into .gpu_check/ (ignored
# by git, named in the device call's carry) the wheels the GPU image lacks and a copy of
# the reference vectors, which do not travel with the checkout.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .gpu_check/wheels
# jsonschema and its dependencies (the image has attrs); CPython 3.12 x86-64 builds.
for package in jsonschema jsonschema-specifications referencing rpds-py; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_28_x86_64 -d .gpu_check/wheels "$package"
done
rm -rf .gpu_check/reference
cp -r "${PIXELNERF_REFERENCE_DIR:-../shared/reference}" .gpu_check/reference
du -sh .gpu_check
