#!/usr/bin/env bash
# The VS Code extension's build and its end-to-end test in a real VS Code
# (code-server from npm, driven by Playwright through Debian's chromium).
#
#   bash .ci/vscode-e2e.sh            # install what is missing, build, test
#   bash .ci/vscode-e2e.sh install    # only the installs (apt, code-server, npm deps)
#   bash .ci/vscode-e2e.sh build      # extension: ESLint, Prettier check, compile, unit tests, .vsix
#   bash .ci/vscode-e2e.sh e2e        # only the end-to-end test (needs the above)
#
# Runs as root with no stdin on a fresh Debian 12 machine that reaches only the
# package registries (Debian, npm, crates.io, PyPI). Nothing is downloaded from
# anywhere else: chromium and ripgrep come from Debian; @vscode/ripgrep (a
# code-server dependency whose postinstall downloads rg from GitHub) is given
# Debian's rg through its download cache; native modules build against the
# system Node headers (nodedir=/usr).
#
# code-server is installed once per machine into $TETHER_CI_CACHE (default
# ~/.cache/tether-ci, outside the clone, so a fresh CI clone on the same
# machine reuses it).
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
ROOT=$PWD

CODE_SERVER_VERSION=${CODE_SERVER_VERSION:-4.100.3}
CACHE=${TETHER_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tether-ci}
CODE_SERVER_DIR=$CACHE/code-server-$CODE_SERVER_VERSION
export npm_config_yes=true npm_config_audit=false npm_config_fund=false
export npm_config_update_notifier=false
# node-gyp must not fetch Node headers from the internet: use Debian/NodeSource's.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

step() { printf '\n== vscode: %s\n' "$*"; }
now() { date +%s; }

need_root_for_apt() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: missing Debian packages ($*) and not root; install them with apt-get" >&2
    exit 1
  fi
}

install_apt() {
  local pkgs=(build-essential pkg-config libkrb5-dev libx11-dev libxkbfile-dev
    libsecret-1-dev ripgrep chromium)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "apt packages present"
    return
  fi
  need_root_for_apt "${missing[@]}"
  local t=$(now)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "apt-get install ${missing[*]}: $(( $(now) - t ))s"
}

check_node() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" != 20 ]; then
    echo "error: code-server $CODE_SERVER_VERSION needs Node 20 (found $(node --version))" >&2
    exit 1
  fi
}

# @vscode/ripgrep's postinstall downloads rg from GitHub unless
# $TMPDIR/vscode-ripgrep-cache-<pkg version>/ripgrep-<rg tag>-<target>.tar.gz
# exists. Put Debian's /usr/bin/rg there, for the versions code-server pins.
seed_ripgrep_cache() {
  local work tgz rgpkg tag target
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "code-server@$CODE_SERVER_VERSION" >/dev/null)
  tgz=$(ls "$work"/code-server-*.tgz)
  tar xzf "$tgz" -C "$work" package/lib/vscode/npm-shrinkwrap.json package/npm-shrinkwrap.json 2>/dev/null || true
  case "$(node -p process.arch)" in
    x64) target=x86_64-unknown-linux-musl ;;
    arm64) target=aarch64-unknown-linux-musl ;;
    *) echo "error: unsupported arch $(node -p process.arch)" >&2; exit 1 ;;
  esac
  for rgpkg in $(node -e '
      const fs = require("fs"); const seen = new Set();
      for (const f of process.argv.slice(1)) {
        if (!fs.existsSync(f)) continue;
        const s = JSON.parse(fs.readFileSync(f, "utf8"));
        for (const [k, v] of Object.entries(s.packages || {}))
          if (k.endsWith("node_modules/@vscode/ripgrep")) seen.add(v.version);
      }
      console.log([...seen].join(" "));' \
      "$work/package/lib/vscode/npm-shrinkwrap.json" "$work/package/npm-shrinkwrap.json"); do
    mkdir -p "$work/rg-$rgpkg"
    (cd "$work/rg-$rgpkg" && npm pack --silent "@vscode/ripgrep@$rgpkg" >/dev/null && tar xzf ./*.tgz)
    tag=$(sed -n "s/^const VERSION = '\(.*\)';/\1/p" "$work/rg-$rgpkg/package/lib/postinstall.js")
    local dir=${TMPDIR:-/tmp}/vscode-ripgrep-cache-$rgpkg
    mkdir -p "$dir" "$work/rgbin"
    cp /usr/bin/rg "$work/rgbin/rg"
    tar czf "$dir/ripgrep-$tag-$target.tar.gz" -C "$work/rgbin" rg
    echo "seeded @vscode/ripgrep $rgpkg cache with /usr/bin/rg as ripgrep-$tag-$target"
  done
  rm -rf "$work"
}

install_code_server() {
  if [ -x "$CODE_SERVER_DIR/node_modules/.bin/code-server" ] && [ -f "$CODE_SERVER_DIR/.installed" ]; then
    echo "code-server $CODE_SERVER_VERSION present in $CODE_SERVER_DIR"
    return
  fi
  check_node
  local t=$(now)
  seed_ripgrep_cache
  rm -rf "$CODE_SERVER_DIR"
  mkdir -p "$CODE_SERVER_DIR"
  echo '{"name":"tether-e2e-code-server","private":true}' >"$CODE_SERVER_DIR/package.json"
  echo "installing code-server $CODE_SERVER_VERSION (several minutes: native modules build)"
  (cd "$CODE_SERVER_DIR" && npm install --unsafe-perm --no-package-lock \
    "code-server@$CODE_SERVER_VERSION" >"$CODE_SERVER_DIR/install.log" 2>&1) || {
    tail -50 "$CODE_SERVER_DIR/install.log" >&2
    echo "error: code-server install failed (log: $CODE_SERVER_DIR/install.log)" >&2
    exit 1
  }
  "$CODE_SERVER_DIR/node_modules/.bin/code-server" --version
  touch "$CODE_SERVER_DIR/.installed"
  echo "code-server install: $(( $(now) - t ))s"
}

install_npm_deps() {
  local t=$(now)
  (cd editors/vscode && npm ci --no-audit --no-fund)
  (cd tests/vscode && npm ci --no-audit --no-fund)
  echo "npm ci (extension + e2e driver): $(( $(now) - t ))s"
}

build_extension() {
  local t=$(now)
  (cd editors/vscode && npm run lint && npm run format:check && npm run compile && npm test &&
    npm run package)
  ls -l editors/vscode/*.vsix
  echo "extension lint + format check + build + unit tests + package: $(( $(now) - t ))s"
}

build_server() {
  if [ -z "${TETHER_BIN:-}" ]; then
    cargo build --locked --bin tether
    export TETHER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tether"
  fi
}

run_e2e() {
  build_server
  local vsix
  vsix=$(ls -t editors/vscode/*.vsix | head -1)
  local t=$(now)
  (cd tests/vscode && CODE_SERVER="$CODE_SERVER_DIR/node_modules/.bin/code-server" \
    TETHER_VSIX="$ROOT/$vsix" TETHER_BIN="$TETHER_BIN" node --test --test-reporter=spec e2e.test.js)
  echo "e2e: $(( $(now) - t ))s (screenshots in tests/vscode/artifacts/)"
}

what=${1:-all}
case "$what" in
  install)
    step "apt packages"; install_apt
    step "code-server"; install_code_server
    step "npm dependencies"; install_npm_deps
    ;;
  build)
    step "extension"; build_extension
    ;;
  e2e)
    step "end-to-end in code-server"; run_e2e
    ;;
  all)
    step "apt packages"; install_apt
    step "code-server"; install_code_server
    step "npm dependencies"; install_npm_deps
    step "extension"; build_extension
    step "end-to-end in code-server"; run_e2e
    ;;
  *) echo "usage: $0 [install|build|e2e|all]" >&2; exit 2 ;;
esac
