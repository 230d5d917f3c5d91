#!/usr/bin/env bash
# Installs the software GPU the GPU tests run on: Mesa's llvmpipe behind EGL, which Dawn (the
# `webgpu` package) drives through its OpenGL ES backend with EGL_PLATFORM=surfaceless.
# Debian 12 packages, and only what that path loads (checked with LD_DEBUG=libs):
#   libegl1          libEGL.so.1, the GLVND EGL loader
#   libegl-dev       the unversioned libEGL.so symlink: Dawn dlopen()s "libEGL.so" and nothing else
#   libegl-mesa0     Mesa's EGL vendor library (pulls libgbm1, libglapi-mesa, libdrm2, xcb libs)
#   libgl1-mesa-dri  swrast_dri.so, i.e. llvmpipe (pulls libllvm15)
# libgles2 is not needed: Dawn takes every GL entry point from eglGetProcAddress. Vulkan's
# lavapipe is not used: Debian 12's (Mesa 22.3) is rejected by Dawn.
# Idempotent: returns at once when everything is installed. Needs root (or sudo) to install.
set -euo pipefail

packages=(libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri)

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-gpu-test: Mesa EGL/llvmpipe already installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-gpu-test: no apt-get here; install Mesa EGL + llvmpipe by hand (GPU tests will skip without an adapter)" >&2
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "setup-gpu-test: need root to install ${missing[*]}; the GPU tests will skip without an adapter" >&2
    exit 0
  fi
fi

echo "setup-gpu-test: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-gpu-test: done"
