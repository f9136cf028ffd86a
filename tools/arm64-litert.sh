#!/usr/bin/env bash
# Prepares an emulated ARM64 Python 3.11 with LiteRT and numpy (qemu-user, Debian's arm64
# libraries, aarch64 wheels from PyPI), once, under a cache folder; then prints the command prefix
# that runs it. Needs root (apt-get) and reaches only Debian's and PyPI's registries.
#
#   ARMPY=$(tools/arm64-litert.sh)        # first call: about 1 minute
#   $ARMPY my_script.py model.tflite      # runs under qemu-aarch64 (Cortex-A76: NEON + dot product)
#
# LiteRT's XNNPACK then runs its ARM64 kernels, so outputs can be compared with x86. Timings under
# emulation mean nothing. LiteRT 2.3.0's aarch64 wheel crashes under qemu-user; 1.4.0 runs.
# Only numpy and ai_edge_litert are importable there (no TensorFlow): export on x86, run on ARM64.
# tests/test_arm64.py (slow) calls it; KERAS_SHUFFLENET_ARM64_DIR moves the cache folder.
set -euo pipefail
arm=${KERAS_SHUFFLENET_ARM64_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keras-shufflenet-arm64}
litert=${ARM64_LITERT_VERSION:-1.4.0}
if [ ! -x "$arm/root/usr/bin/python3.11" ] || [ ! -d "$arm/site/ai_edge_litert" ]; then
  mkdir -p "$arm/debs" "$arm/root" "$arm/site" "$arm/wheels"
  if ! command -v qemu-aarch64-static >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >&2
  fi
  if ! dpkg --print-foreign-architectures | grep -q arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq >&2
  fi
  (cd "$arm/debs" && apt-get download $(for p in libc6 python3.11-minimal libpython3.11-minimal \
     libpython3.11-stdlib libexpat1 zlib1g libffi8 libssl3 libstdc++6 libgcc-s1 libbz2-1.0 liblzma5 \
     libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libcrypt1 libgomp1 libatomic1; do
     echo "$p:arm64"; done) >&2)
  for d in "$arm"/debs/*.deb; do dpkg-deb -x "$d" "$arm/root"; done
  python3 -m pip download -q --no-deps --platform manylinux_2_27_aarch64 \
     --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --python-version 3.11 \
     --only-binary=:all: -d "$arm/wheels" "ai-edge-litert==$litert" "numpy<2.5" >&2
  for w in "$arm"/wheels/*.whl; do python3 -m zipfile -e "$w" "$arm/site"; done
fi
echo "env QEMU_LD_PREFIX=$arm/root PYTHONPATH=$arm/site qemu-aarch64-static -cpu cortex-a76 $arm/root/usr/bin/python3.11"
