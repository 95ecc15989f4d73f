#!/usr/bin/env bash
# Installs what the tests need on Debian 12 / Ubuntu (as root or with sudo): the Vulkan loader, Mesa's software
# Vulkan (lavapipe) for machines without a GPU driver, headless Chromium (the report's and LiteRT.js's browser)
# and the font the report's labels are sized for. Dawn refuses Mesa 22; Debian 12 has Mesa 25 in backports.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
. /etc/os-release
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
  fi
  MESA=(-t bookworm-backports mesa-vulkan-drivers)
else
  MESA=(mesa-vulkan-drivers)
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q libvulkan1 chromium fonts-dejavu-core
$SUDO apt-get install -y -q "${MESA[@]}"
