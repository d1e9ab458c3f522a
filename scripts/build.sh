#!/bin/sh
# Configure (once) and build Spd into build/, or into the directory given.
# SPD_SANITIZE=1 builds with AddressSanitizer and UBSan instead.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
if [ ! -f "$dir/build.ninja" ]; then
    if [ "${SPD_SANITIZE:-0}" = 1 ]; then
        meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false \
            -Dc_args=-fno-sanitize-recover=all >/dev/null
    else
        meson setup "$dir" >/dev/null
    fi
fi
ninja -C "$dir" >/dev/null
