#!/usr/bin/env bash
# Uninstalls Hands installed by scripts/install.sh (installed beside it as PREFIX/current/uninstall.sh, linked as
# PREFIX/bin/hands-uninstall): stops the units, deletes every sandbox and pool ('hands engine teardown': no container,
# mount, namespace, veth, cgroup or forwarder left), removes the units, the links and PREFIX (releases, CRIU and the dashboard). The
# state (STATE_DIR: the engine's database, snapshots, images, volume; the orchestrators' claims) and the configuration
# (CONFIG_DIR: settings and credentials) are kept unless --purge.
#
# Usage: sudo PREFIX/bin/hands-uninstall [--prefix /opt/hands] [--state-dir /var/lib/hands] [--config-dir /etc/hands]
#          [--unit-dir /etc/systemd/system] [--bin-dir /usr/local/bin|none] [--purge]
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
prefix="" state=/var/lib/hands config=/etc/hands unit_dir=/etc/systemd/system bin_dir=/usr/local/bin purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --state-dir) state="$2"; shift 2 ;;
    --config-dir) config="$2"; shift 2 ;;
    --unit-dir) unit_dir="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  # Run from an installed release (PREFIX/releases/V/uninstall.sh): its prefix; from a clone: the default.
  case "$here" in */releases/*) prefix="${here%/releases/*}" ;; *) prefix=/opt/hands ;; esac
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "uninstall.sh: run it as root (sudo)" >&2
  exit 1
fi
hands="$prefix/current/hands"

systemd_owned=0
if [ -d /run/systemd/system ] && [ "$unit_dir" = /etc/systemd/system ]; then
  systemd_owned=1
  echo "==> stopping and disabling the units"
  mapfile -t orchestrators < <(systemctl list-units --all --plain --no-legend 'hands-orchestrator@*.service' 'hands-webhook@*.service' | awk '{print $1}')
  systemctl disable --now "${orchestrators[@]}" hands-engine.service 2>/dev/null || true
fi

if [ -d "$state/engine" ] && { [ -x "$hands" ] || findmnt -rn -o TARGET | grep -F "$state/engine/" >/dev/null; }; then
  if [ ! -x "$hands" ]; then
    echo "uninstall.sh: $hands is missing, so the engine's sandboxes (mounted under $state/engine) cannot be deleted; reinstall, or pass the --prefix it was installed with" >&2
    exit 1
  fi
  echo "==> deleting every sandbox and pool (hands engine teardown)"
  # Refused, with the holder's pid, while an engine still serves this directory: stop it first.
  "$hands" engine teardown --data "$state/engine"
fi

echo "==> removing the units, links and $prefix"
rm -f "$unit_dir/hands-engine.service" "$unit_dir/hands-orchestrator@.service" "$unit_dir/hands-webhook@.service"
rm -rf "$unit_dir"/hands-engine.service.d "$unit_dir"/hands-orchestrator@*.d "$unit_dir"/hands-webhook@*.d
if [ "$systemd_owned" -eq 1 ]; then
  systemctl daemon-reload
  systemctl reset-failed 'hands-*' 2>/dev/null || true
fi
if [ "$bin_dir" != none ] && [ -L "$bin_dir/hands" ] && [[ "$(readlink "$bin_dir/hands")" == "$prefix/"* ]]; then
  rm -f "$bin_dir/hands"
fi
rm -rf "$prefix/releases" "$prefix/current" "$prefix/bin" "$prefix/criu" "$prefix/dashboard"
rmdir "$prefix" 2>/dev/null || true
# Where /run is not a tmpfs the engine made CRIU's kernel-feature cache itself (docs/engine.md); CRIU would never clear it.
if [ "$(findmnt -n -o FSTYPE --target /run 2>/dev/null)" != tmpfs ]; then
  rm -f /run/criu.kdat
fi
# The engine's blackhole route under every sandbox's /30 (HostFirewall): shared by every engine, so no engine removes it.
ip route del blackhole 10.200.0.0/16 2>/dev/null || true

if [ "$purge" -eq 1 ]; then
  echo "==> --purge: removing $state and $config"
  rm -rf "$state" "$config"
else
  echo "    kept $state (engine data, snapshots, images) and $config (settings, credentials); --purge removes them"
fi

# The forwarder, told to exit by the engine's last stop, may take a moment to end.
for _ in $(seq 1 60); do
  running=0
  for pid in /proc/[0-9]*; do
    case "$(readlink "$pid/exe" 2>/dev/null || true)" in "$prefix"/*) running=1 ;; esac
  done
  [ "$running" -eq 0 ] && break
  sleep 0.5
done
left=()
if findmnt -rn -o TARGET | grep -F "$state/" >/dev/null; then left+=("mounts under $state"); fi
for pid in /proc/[0-9]*; do
  exe=$(readlink "$pid/exe" 2>/dev/null || true)
  case "$exe" in "$prefix"/*) left+=("process ${pid#/proc/} ($exe)") ;; esac
done
if [ ${#left[@]} -gt 0 ]; then
  echo "uninstall.sh: still there: ${left[*]}" >&2
  exit 1
fi
echo "==> uninstalled"
