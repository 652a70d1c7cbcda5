#!/usr/bin/env bash
# Zig and cargo-zigbuild, pinned, in a virtualenv under the tests' cache: they
# build the shipped binary against glibc 2.17 (tests/run). Both come from the
# Python package index through the machine's own pip configuration.
#
#   sudo tests/zig.sh          # install them once per pinned version
#   tests/zig.sh --bin         # print the directory that holds cargo-zigbuild
set -euo pipefail

ZIG=0.13.0             # ziglang
CARGO_ZIGBUILD=0.20.1  # cargo-zigbuild
VENV=/var/cache/portico-tests/zig-venv

if [ "${1:-}" = "--bin" ]; then
  echo "$VENV/bin"
  exit 0
fi

# grep reads all of pip's output (no -q): stopping early would leave pip
# writing into a closed pipe, and pipefail would count that as "missing".
have() { "$VENV/bin/pip" show "$1" 2>/dev/null | grep -x "Version: $2" >/dev/null; }
if have ziglang "$ZIG" && have cargo-zigbuild "$CARGO_ZIGBUILD"; then
  exit 0
fi
echo "tests/zig.sh: installing ziglang $ZIG and cargo-zigbuild $CARGO_ZIGBUILD in $VENV"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
# Debian's Python (python3-venv): the pyenv Pythons some hosts carry are not
# in a clean CI image.
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  "ziglang==$ZIG" "cargo-zigbuild==$CARGO_ZIGBUILD"
