#!/usr/bin/env bash
# Install qlik-email into a fresh virtual environment. The reusable workflows and
# the composite action (action.yml) all install it with this script:
#
#   bash scripts/install-tool.sh --venv DIR --source DIR     # from a copy of qlik-email's source
#   bash scripts/install-tool.sh --venv DIR --package SPEC   # a release from the package index,
#                                                            # e.g. qlik-email==0.2.0
#   option: --python PYTHON (the interpreter that makes the environment; default python3)
#
# --source DIR is a checkout of qlik-email (the workflows check it out at the commit
# they were called at; the action passes its own directory). It is copied, without
# .git, virtual environments and build output, to a temporary directory and
# installed from there, so DIR is never written to; qlik-email's dependencies come
# from the package index.
#
# Nothing from the current directory takes part: Python runs isolated (-I) from a
# temporary working directory, so a pull request's checkout in the current
# directory cannot shadow pip or venv. DIR in --venv is emptied first (--clear).
# Prints `qlik-email --version` at the end.
set -euo pipefail

usage() {
  echo "usage: install-tool.sh --venv DIR (--source DIR | --package SPEC) [--python PYTHON]" >&2
  exit 2
}

venv="" source="" package="" python=python3
while [ "$#" -gt 0 ]; do
  case $1 in
    --venv | --source | --package | --python)
      [ "$#" -ge 2 ] || usage
      case $1 in
        --venv) venv=$2 ;;
        --source) source=$2 ;;
        --package) package=$2 ;;
        --python) python=$2 ;;
      esac
      shift 2
      ;;
    *) usage ;;
  esac
done
if [ -z "$venv" ] || { [ -z "$source" ] && [ -z "$package" ]; } \
  || { [ -n "$source" ] && [ -n "$package" ]; }; then
  usage
fi

if [ -n "$package" ]; then
  # A requirement on the package index, never a path, a URL or a pip option: those
  # could install from the current directory (a pull request) or another index.
  spec='^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._,-]+\])?'
  spec+='( *(===|==|~=|!=|>=|<=|>|<) *[A-Za-z0-9.*+!_-]+( *, *(===|==|~=|!=|>=|<=|>|<) *[A-Za-z0-9.*+!_-]+)*)?$'
  if ! [[ $package =~ $spec ]]; then
    echo "install-tool.sh: --package takes a requirement such as qlik-email==0.2.0, not '$package'" >&2
    exit 2
  fi
fi

if [ -n "$source" ]; then
  if [ ! -f "$source/pyproject.toml" ] || ! grep -q '^name = "qlik-email"$' "$source/pyproject.toml"; then
    echo "install-tool.sh: $source is not a checkout of qlik-email (no pyproject.toml naming it)" >&2
    exit 2
  fi
  source=$(cd "$source" && pwd -P)
fi
python=$(command -v "$python") || {
  echo "install-tool.sh: no Python interpreter '$python'" >&2
  exit 2
}
mkdir -p "$venv"
venv=$(cd "$venv" && pwd -P)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$python" -I -m venv --clear "$venv"
pip=("$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check --no-input)
if [ -n "$source" ]; then
  commit=$(git -C "$source" rev-parse HEAD 2> /dev/null || true)
  echo "Installing qlik-email from $source${commit:+ (commit $commit)}"
  mkdir "$work/src"
  tar -C "$source" -cf - \
    --exclude=.git --exclude=.venv --exclude=./.ci/node --exclude=./.ci/venv \
    --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache . \
    | tar -C "$work/src" -xf -
  "${pip[@]}" "$work/src"
else
  echo "Installing $package from the package index"
  "${pip[@]}" "$package"
fi
"$venv/bin/qlik-email" --version
