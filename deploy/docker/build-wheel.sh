#!/bin/sh
# Builds RaceLab's own wheel (no dependencies) from the source tree SRC into the folder OUT.
# The image's build stage runs it; tests/integration/test_image.py runs it too, on the files the Dockerfile copies.
# Usage: build-wheel.sh SRC OUT
set -eu
src=$1
out=$2
python3 -m pip wheel --no-deps --wheel-dir "$out" "$src"
