#!/bin/sh
# Build Spd and show it working: start a 64 MiB RAM disk and run its
# self-check through the SCSI engine.
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
scripts/build.sh
exec build/devices/spd-ramdisk --size 64M --check
