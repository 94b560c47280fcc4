#!/usr/bin/env bash
# Installs the Debian -dev packages the build links against, when any is missing.
set -euo pipefail
packages=(libopenblas-dev libfaiss-dev libjpeg-dev libpng-dev libsqlite3-dev libsnappy-dev libzstd-dev zlib1g-dev chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y "${missing[@]}"
fi
