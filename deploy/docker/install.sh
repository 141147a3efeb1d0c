#!/bin/sh
# Installs RaceLab from its wheel in the folder WHEELS into a new virtual environment PREFIX: the runtime
# dependencies from the package index, no development tools. The image's runtime stage runs it; so does
# tests/integration/test_image.py, into a fresh folder, with the wheel build-wheel.sh made.
# Usage: install.sh WHEELS PREFIX
set -eu
wheels=$1
prefix=$2
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install "$wheels"/racelab_ingest-*.whl
# The installed set is consistent (every requirement of every package met), and the command starts.
"$prefix/bin/python" -m pip check
"$prefix/bin/racelab" --help >/dev/null
