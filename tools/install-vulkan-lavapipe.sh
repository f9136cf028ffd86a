#!/usr/bin/env bash
# Installs a software Vulkan device (Mesa lavapipe 25.x from Debian bookworm-backports), so that
# LiteRT's GPU accelerator (ML Drift over WebGPU/Dawn) runs on a machine without a GPU. Mesa 22
# (bookworm) is refused by Dawn ("No adapters found"); 25 works. Needs root. Idempotent.
# Afterwards: `vulkaninfo --summary` (package vulkan-tools) shows "llvmpipe".
#
# What it is for: checking that a .tflite runs wholly on the GPU accelerator
# (CompiledModel.is_fully_accelerated()) and that its outputs match the CPU's. Not for timing.
# Do not import TensorFlow in the process that creates the GPU CompiledModel: it crashes there
# (segfault); run the GPU side in a child process that imports only numpy and ai_edge_litert.
# .ci/run calls it before the tests; tests/test_gpu.py skips where no Vulkan device is found.
set -euo pipefail
if dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]'; then
  exit 0
fi
. /etc/os-release
# The machine's own Debian mirror, as apt is configured here.
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | head -n 1 | awk '{print $2}')
[ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | head -n 1 | awk '{print $2}')
echo "deb $mirror ${VERSION_CODENAME}-backports main" > /etc/apt/sources.list.d/backports.list
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "${VERSION_CODENAME}-backports" \
  mesa-vulkan-drivers libvulkan1
