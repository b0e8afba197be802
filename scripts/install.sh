#!/usr/bin/env bash
# Installs Hands as a self-contained bundle: `hands` (self-contained .NET, no runtime needed on the server), its
# NativeAOT binaries (hands-worker, hands-sandboxd, hands-receiver; scripts/lib/release.sh lists them) in one release directory,
# PREFIX/releases/VERSION, made current by switching the PREFIX/current link; systemd units for the engine, one
# orchestrator per environment (long-poll) and one webhook receiver per environment; the engine's prerequisites
# (apt-get, only what is missing; CRIU 4.2 into PREFIX/criu). The same script runs from a clone (scripts/install.sh:
# builds the release, needs the .NET SDK) and from a package made by scripts/package.sh (./install.sh: copies the
# release it carries, needs no SDK). Run it again from a newer clone or package to upgrade in place: the new release
# is put beside the running one, then `current` switches and running services restart; sandboxes, their workers and the
# host-port forwarder keep running (docs/install.md).
#
# Usage: sudo scripts/install.sh [--prefix /opt/hands] [--state-dir /var/lib/hands] [--config-dir /etc/hands]
#          [--unit-dir /etc/systemd/system] [--bin-dir /usr/local/bin|none] [--version V]
#          [--build-only | --activate V] [--no-prerequisites] [--no-restart]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lib="$here/lib"
source "$lib/release.sh"
# From a package (install.sh beside release/) or from a clone (scripts/install.sh, the solution one level up).
package="" repo=""
if [ -f "$here/release/VERSION" ]; then
  package="$here/release"
elif [ -f "$here/../Hands.slnx" ]; then
  repo="$(cd "$here/.." && pwd)"
else
  echo "install.sh: neither a package (no $here/release/VERSION) nor a clone (no $here/../Hands.slnx)" >&2
  exit 1
fi

prefix=/opt/hands state=/var/lib/hands config=/etc/hands unit_dir=/etc/systemd/system bin_dir=/usr/local/bin
version="" mode=all prerequisites=1 restart=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --state-dir) state="$2"; shift 2 ;;
    --config-dir) config="$2"; shift 2 ;;
    --unit-dir) unit_dir="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --build-only) mode=build; shift ;;
    --activate) mode=activate; version="$2"; shift 2 ;;
    --no-prerequisites) prerequisites=0; shift ;;
    --no-restart) restart=0; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
for dir in prefix state config unit_dir; do
  case "${!dir}" in /*) ;; *) echo "install.sh: --${dir//_/-} must be an absolute path, not '${!dir}'" >&2; exit 2 ;; esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root (sudo): the engine's units, state and credentials are root's" >&2
  exit 1
fi
umask 022

if [ -n "$package" ] && [ "$mode" != activate ]; then
  packaged=$(cat "$package/VERSION")
  if [ -n "$version" ] && [ "$version" != "$packaged" ]; then
    echo "install.sh: this package holds release $packaged, not $version" >&2
    exit 2
  fi
  version="$packaged"
fi
[ -n "$version" ] || version=$(release_default_version "$repo")
release_check_version "$version" || exit 2
release="$prefix/releases/$version"

if [ "$prerequisites" -eq 1 ]; then
  source "$lib/prerequisites.sh"
  # Building from a clone needs the NativeAOT toolchain too; a package's release is built already.
  building=0
  [ -n "$repo" ] && [ "$mode" != activate ] && building=1
  install_engine_prerequisites "$prefix/criu" "$building"
fi

if [ "$mode" != activate ] && [ -n "$package" ] && [ -e "$release" ] && diff -rq --exclude=.activated "$package" "$release" >/dev/null 2>&1; then
  # The same package again (a retry, or a repair of the units): its release is in place already, byte for byte.
  echo "==> release $version is installed already, unchanged"
  [ "$mode" = build ] && exit 0
  mode=activate
fi
if [ "$mode" != activate ]; then
  [ -e "$release" ] && { echo "install.sh: $release exists; pass another --version, or --activate $version to make it current" >&2; exit 1; }
  stage="$prefix/releases/.$version.partial"
  rm -rf "$stage"
  mkdir -p "$stage"
  if [ -n "$package" ]; then
    echo "==> copying release $version from $here"
    cp -a "$package/." "$stage/"
  else
    release_build "$repo" "$version" "$stage"
  fi
  # Root's from here on, whoever unpacked the package or owns the clone: the engine runs these binaries as root and
  # binds hands-sandboxd and hands-worker into every sandbox, so a user who could write them would own both.
  chown -R root:root "$stage"
  chmod -R go-w "$stage"
  release_is_complete "$stage" || { echo "install.sh: release $version is incomplete (${release_native_binaries[*]%% *}, hands, uninstall.sh, VERSION)" >&2; exit 1; }
  mv -T "$stage" "$release"
  echo "    $release"
fi
if [ -n "$repo" ] && [ "$mode" != activate ]; then
  # The Aspire dashboard of `hands up/demo --dashboard` (125 MB unpacked): kept once per prefix, beside the releases,
  # not in each one (releases are kept while a sandbox names them), from the NuGet packages folder where building hands
  # restored it; hands looks for it at $prefix/dashboard/<version>/Aspire.Dashboard. A package leaves it out to stay
  # small (docs/observability.md: HANDS_DASHBOARD_BINARY points hands at one).
  dashboard_version=$(sed -n 's:.*PackageVersion = "\(.*\)";.*:\1:p' "$repo/src/Hands.Cli/Dashboard/AspireDashboard.cs")
  dashboard_source="${NUGET_PACKAGES:-$HOME/.nuget/packages}/aspire.dashboard.sdk.linux-x64/$dashboard_version/tools"
  if [ -n "$dashboard_version" ] && [ ! -x "$prefix/dashboard/$dashboard_version/Aspire.Dashboard" ] && [ -x "$dashboard_source/Aspire.Dashboard" ]; then
    rm -rf "$prefix/dashboard/.$dashboard_version.partial"
    mkdir -p "$prefix/dashboard"
    cp -R --no-preserve=ownership "$dashboard_source" "$prefix/dashboard/.$dashboard_version.partial"
    chmod -R go-w "$prefix/dashboard/.$dashboard_version.partial"
    mv -T "$prefix/dashboard/.$dashboard_version.partial" "$prefix/dashboard/$dashboard_version"
    echo "    $prefix/dashboard/$dashboard_version"
  fi
fi
[ "$mode" = build ] && exit 0
[ -x "$release/hands" ] || { echo "install.sh: $release is not a built release (install.sh --build-only --version $version first)" >&2; exit 1; }

echo "==> activating $version"
previous=$(readlink "$prefix/current" 2>/dev/null || true)
# Marks it as once current: pruning spares a release built for later (--build-only) until it has been (prune-releases.sh).
touch "$release/.activated"
ln -sfn "releases/$version" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
mkdir -p "$prefix/bin"
ln -sfn ../current/hands "$prefix/bin/hands"
ln -sfn ../current/uninstall.sh "$prefix/bin/hands-uninstall"
if [ "$bin_dir" != none ]; then
  mkdir -p "$bin_dir"
  ln -sfn "$prefix/current/hands" "$bin_dir/hands"
fi

# State and secrets: root only. The engine makes its own key in $state/engine/api-key on first start.
install -d -m 700 "$state" "$state/orchestrator" "$config" "$config/credentials" "$config/orchestrator"
if [ ! -e "$config/engine.env" ]; then
  cat > "$config/engine.env" <<ENV
# Read by hands-engine.service (EnvironmentFile=). HANDS_ENGINE_ARGS: more flags of 'hands engine' (hands engine --help),
# e.g. --host-port 8787 to let sandboxes reach a control plane on this host, --max-sandboxes, --volume-mb.
HANDS_ENGINE_ARGS=--urls http://127.0.0.1:8900 --ingress http://127.0.0.1:9443
ENV
  chmod 600 "$config/engine.env"
fi

echo "==> writing systemd units to $unit_dir"
mkdir -p "$unit_dir"
cat > "$unit_dir/hands-engine.service.new" <<UNIT
# Written by Hands' scripts/install.sh ($version); the next install rewrites it. Local settings: $config/engine.env.
[Unit]
Description=Hands sandbox engine (Tensorlake's API on loopback over runc, overlayfs, network namespaces, CRIU)
Documentation=file://$prefix/current/README.md
After=network-online.target local-fs.target
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile=$config/engine.env
Environment=HANDS_ENGINE_DATA=$state/engine
WorkingDirectory=$state
UMask=0077
ExecStart=$prefix/current/hands engine --data $state/engine --criu $prefix/criu/criu \$HANDS_ENGINE_ARGS
# Only the engine itself is stopped: its sandboxes (runc containers) and its host-port forwarder ('hands engine
# forwarder', which carries every worker's connection to its control plane) must outlive a restart or an upgrade;
# the next engine re-attaches to both. As containerd.service does for its shims.
KillMode=process
Delegate=yes
Restart=on-failure
RestartSec=2
TimeoutStopSec=120
LimitNOFILE=1048576
TasksMax=infinity

[Install]
WantedBy=multi-user.target
UNIT
cat > "$unit_dir/hands-orchestrator@.service.new" <<UNIT
# Written by Hands' scripts/install.sh ($version); the next install rewrites it. One instance per self_hosted
# environment: hands-orchestrator@ENVIRONMENT_ID.service. Settings: $config/orchestrator/%i.env (ANTHROPIC_BASE_URL,
# TENSORLAKE_API_URL, ...); the environment key: $config/credentials/%i/ANTHROPIC_ENVIRONMENT_KEY (root only).
[Unit]
Description=Hands orchestrator (long-poll) for environment %i
Documentation=file://$prefix/current/README.md
After=network-online.target hands-engine.service
Wants=network-online.target
# One orchestrator per environment: this and the webhook receiver share the environment's lock.
Conflicts=hands-webhook@%i.service

[Service]
Type=simple
Environment=ANTHROPIC_ENVIRONMENT_ID=%i HANDS_ENGINE_DATA=$state/engine ORCHESTRATOR_LOCK_FILE=$state/orchestrator/%i.lock
EnvironmentFile=$config/orchestrator/%i.env
LoadCredential=ANTHROPIC_ENVIRONMENT_KEY:$config/credentials/%i/ANTHROPIC_ENVIRONMENT_KEY
WorkingDirectory=$state/orchestrator
UMask=0077
ExecStart=$prefix/current/hands poll
# SIGTERM drains: claims in flight finish their hand-off; what is cut is settled by the next start (its claims file).
KillMode=mixed
Restart=on-failure
RestartSec=2
TimeoutStopSec=90

[Install]
WantedBy=multi-user.target
UNIT
cat > "$unit_dir/hands-webhook@.service.new" <<UNIT
# Written by Hands' scripts/install.sh ($version); the next install rewrites it. The webhook mode of an orchestrator,
# instead of hands-orchestrator@ (long-poll), for one self_hosted environment: hands-webhook@ENVIRONMENT_ID.service.
# Settings: $config/orchestrator/%i.env, as the long-poll unit's, plus HANDS_WEBHOOK_URLS (where it listens, http only:
# a TLS proxy in front of it takes Anthropic's deliveries). Secrets (root only): $config/credentials/%i/
# ANTHROPIC_ENVIRONMENT_KEY and ANTHROPIC_WEBHOOK_SIGNING_KEY (the endpoint's whsec_... secret).
[Unit]
Description=Hands orchestrator (webhook receiver) for environment %i
Documentation=file://$prefix/current/README.md
After=network-online.target hands-engine.service
Wants=network-online.target
# One orchestrator per environment: this and the long-poll unit share the environment's lock.
Conflicts=hands-orchestrator@%i.service

[Service]
Type=simple
Environment=ANTHROPIC_ENVIRONMENT_ID=%i HANDS_ENGINE_DATA=$state/engine ORCHESTRATOR_LOCK_FILE=$state/orchestrator/%i.lock HANDS_WEBHOOK_URLS=http://127.0.0.1:5051
EnvironmentFile=$config/orchestrator/%i.env
LoadCredential=ANTHROPIC_ENVIRONMENT_KEY:$config/credentials/%i/ANTHROPIC_ENVIRONMENT_KEY
LoadCredential=ANTHROPIC_WEBHOOK_SIGNING_KEY:$config/credentials/%i/ANTHROPIC_WEBHOOK_SIGNING_KEY
WorkingDirectory=$state/orchestrator
UMask=0077
ExecStart=$prefix/current/hands webhook --urls \${HANDS_WEBHOOK_URLS}
# SIGTERM finishes the drain under way; what is cut is settled by the next start (its claims file).
KillMode=mixed
Restart=on-failure
RestartSec=2
TimeoutStopSec=90

[Install]
WantedBy=multi-user.target
UNIT
for unit in hands-engine.service hands-orchestrator@.service hands-webhook@.service; do
  mv "$unit_dir/$unit.new" "$unit_dir/$unit"
done

if [ -d /run/systemd/system ] && [ "$unit_dir" = /etc/systemd/system ]; then
  systemctl daemon-reload
  if [ "$restart" -eq 1 ]; then
    # Only what runs is restarted (try-restart), on the new release: the engine first, then each orchestrator.
    systemctl try-restart hands-engine.service
    systemctl try-restart 'hands-orchestrator@*.service' 'hands-webhook@*.service'
  fi
fi

# Old releases go once nothing runs from them and no sandbox names them (scripts/lib/prune-releases.sh). Activating the
# release that was current already names no previous one, so nothing is pruned then: the rollback target stays.
if [ "$previous" != "releases/$version" ]; then
  "$lib/prune-releases.sh" "$prefix" "$state" "releases/$version" "$previous"
fi

echo "==> installed $version: $prefix/current/hands (linked from ${bin_dir/none/$prefix/bin}/hands)"
"$prefix/current/hands" --version >/dev/null
