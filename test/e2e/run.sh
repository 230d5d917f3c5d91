#!/usr/bin/env bash
# Real-VS-Code end-to-end tests of the extension, headless and offline:
#   code-server@4.100.3 (= VS Code 1.100.3: server, Node extension host, web workbench) from npm,
#   Debian's chromium driven by playwright-core.
# 1. mocha integration tests inside the real extension host (extension loaded from this checkout);
# 2. a UI walk in Chromium on the packaged .vsix (the linux-x64 platform package where it can be
#    built), installed with --install-extension.
# Installs whatever is missing itself (CI runs on a fresh machine as root). Exits non-zero on failure.
# Env: E2E_SKIP=tests|ui to skip a part, SKIP_APT=1, CS_VERSION, E2E_VERBOSE=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CS_VERSION="${CS_VERSION:-4.100.3}"   # the newest code-server whose engines.node is "20"; UI selectors depend on it
CS_HOME="${CS_HOME:-$ROOT/.vscode-test/code-server-$CS_VERSION}"
OUT="${E2E_OUT:-$ROOT/e2e-results}"
SKIP="${E2E_SKIP:-}"
step() { echo; echo "=== [e2e $(date +%T)] $*"; }
SECONDS=0

step "1/6 system packages (chromium, ripgrep, native-module build deps)"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v rg >/dev/null || need+=(ripgrep)
# code-server builds native modules (kerberos, node-pty) from source when it is first installed.
if [ ! -f "$CS_HOME/.installed" ]; then
  dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
  command -v make >/dev/null && command -v g++ >/dev/null || need+=(build-essential)
  command -v python3 >/dev/null || need+=(python3)
  command -v pkg-config >/dev/null || need+=(pkg-config)
fi
if [ "${SKIP_APT:-0}" != 1 ] && [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "took ${SECONDS}s"; T=$SECONDS

step "2/6 code-server@$CS_VERSION in ${CS_HOME#$ROOT/} (cached)"
if [ ! -f "$CS_HOME/.installed" ]; then
  rm -rf "$CS_HOME"; mkdir -p "$CS_HOME/.tmp"
  (
    export TMPDIR="$CS_HOME/.tmp"   # keeps the ripgrep cache below out of the shared /tmp
    # @vscode/ripgrep's postinstall downloads rg from GitHub, which is unreachable here: feed it
    # Debian's rg (the same 13.0.0) through the cache it checks first.
    RG_CACHE="$TMPDIR/vscode-ripgrep-cache-1.15.11"
    mkdir -p "$RG_CACHE"
    tar czf "$RG_CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
    # node-gyp: use the local Node headers instead of downloading them from nodejs.org.
    NODE_PREFIX="$(node -p 'require("path").resolve(process.execPath, "../..")')"
    [ -f "$NODE_PREFIX/include/node/node.h" ] && export npm_config_nodedir="$NODE_PREFIX"
    echo '{"name":"code-server-host","private":true}' > "$CS_HOME/package.json"
    cd "$CS_HOME"
    # unsafe_perm: code-server's postinstall refuses to run as root without it.
    # yes: node-pty's postinstall runs `npx node-gyp`, which otherwise aborts without a terminal.
    npm_config_unsafe_perm=true npm_config_yes=true \
      npm install --no-audit --no-fund --no-save --foreground-scripts "code-server@$CS_VERSION" > install.log 2>&1
  ) || { tail -50 "$CS_HOME/install.log"; exit 1; }
  rm -rf "$CS_HOME/.tmp"; touch "$CS_HOME/.installed"
fi
# (XDG_CONFIG_HOME: even --version writes a config.yaml with a random password into ~/.config)
XDG_CONFIG_HOME="$CS_HOME/xdg-config" "$CS_HOME/node_modules/.bin/code-server" --version | head -1
echo "took $((SECONDS-T))s"; T=$SECONDS

[ "${E2E_INSTALL_ONLY:-0}" = 1 ] && exit 0

step "3/6 build: bundles, e2e tests, .vsix"
cd "$ROOT"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
node scripts/build.mjs
node test/e2e/build-tests.mjs
# The UI walk installs what a user on this platform would: on Linux x64, with llama.cpp's CPU build
# installed, the platform package (llama.cpp inside), whose Try Model the walk then uses; else the
# universal package.
VSIX="$ROOT/chat-vector.vsix"; TRY_MODEL=0
if [ "$SKIP" != ui ]; then
  if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] && [ -d node_modules/@node-llama-cpp/linux-x64 ]; then
    npm run -s package -- --target linux-x64 >/dev/null
    VSIX="$ROOT/chat-vector-linux-x64.vsix"; TRY_MODEL=1
  else
    npm run -s package >/dev/null
  fi
fi
echo "took $((SECONDS-T))s"; T=$SECONDS

mkdir -p "$OUT"
DRIVER=(node "$ROOT/test/e2e/driver.mjs")
COMMON=(--code-server "$CS_HOME/node_modules/code-server" --ext "$ROOT" --out "$OUT")


if [ "$SKIP" != tests ]; then
  step "4/6 integration tests (mocha inside the real extension host)"
  # Demo checkpoints made by the real CLI: the tests compare the extension with `chatvec diff --json`.
  rm -rf "$OUT/ws-tests" "$OUT"/ws-tests-*; mkdir -p "$OUT/ws-tests"
  node dist/cli.js demo --dir "$OUT/ws-tests" --preset tiny >/dev/null 2>&1
  "${DRIVER[@]}" tests "${COMMON[@]}" --tests "$ROOT/out/test/e2e/suite/index" --workspace "$OUT/ws-tests"
  echo "took $((SECONDS-T))s"; T=$SECONDS

  step "4b/6 integration tests in Restricted Mode (an untrusted folder)"
  rm -rf "$OUT/ws-restricted"; mkdir -p "$OUT/ws-restricted"
  node dist/cli.js demo --dir "$OUT/ws-restricted" --preset tiny >/dev/null 2>&1
  "${DRIVER[@]}" tests "${COMMON[@]}" --tests "$ROOT/out/test/e2e/suite/index" --workspace "$OUT/ws-restricted" --restricted 1
  echo "took $((SECONDS-T))s"; T=$SECONDS
fi

if [ "$SKIP" != ui ]; then
  step "5/6 UI walk in chromium on the installed .vsix"
  # The walk creates the demo itself; a big all-zero trio (sparse files) makes a job slow enough
  # to watch its progress and cancel it.
  rm -rf "$OUT/ws-ui" "$OUT"/ui-*.png "$OUT/readme"; mkdir -p "$OUT/ws-ui"
  node out/test/e2e/fixtures.js "$OUT/ws-ui/stress" 1536
  # The sparse stress files would read as 4.6 GB to any tool that archives e2e-results/.
  trap 'rm -rf "$OUT/ws-ui/stress"' EXIT
  "${DRIVER[@]}" ui "${COMMON[@]}" --workspace "$OUT/ws-ui" --vsix "$VSIX" --try-model "$TRY_MODEL"
  echo "took $((SECONDS-T))s"; T=$SECONDS
fi

step "6/6 done"
echo "E2E PASSED in ${SECONDS}s; screenshots in ${OUT#$ROOT/}/"
