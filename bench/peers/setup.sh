#!/usr/bin/env bash
# Creates the Python environments of the peer comparison (bench/peers/run.py) under a
# cache folder and installs pinned Evidently and whylogs, each in its own venv so that
# their dependency pins cannot fight. Prints the python of each, one "name=path" a line.
#
#   bench/peers/setup.sh            # PEERS_CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/driftmon/peers
set -euo pipefail

cache="${PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftmon/peers}"
python="${PYTHON:-python3.11}"
mkdir -p "$cache"

# name, then the pip requirements of that venv.
install() {
  local name=$1; shift
  local venv="$cache/$name"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
  echo "$name=$venv/bin/python"
}

# pandas 3 removed pandas.core.dtypes.common.infer_dtype_from_object, which Evidently
# 0.7.23 imports; whylogs does not depend on pandas but needs it to log a DataFrame.
install evidently 'evidently==0.7.23' 'pandas==2.3.3' 'pyarrow==26.0.1'
install whylogs 'whylogs[viz]==1.6.4' 'pandas==2.3.3' 'pyarrow==26.0.1'
