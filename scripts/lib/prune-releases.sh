#!/usr/bin/env bash
# Usage: prune-releases.sh PREFIX STATE_DIR CURRENT PREVIOUS   (CURRENT and PREVIOUS as releases/VERSION, PREVIOUS may be empty)
# Removes PREFIX/releases/* that are neither CURRENT nor PREVIOUS, that were activated once (install.sh leaves .activated
# in a release it makes current), that no process maps and that no sandbox's bundle under STATE_DIR/engine names. Called by install.sh after it switched PREFIX/current; tested by InstallRulesTests.
set -euo pipefail
prefix="$1" state="$2" version_name="$3" previous="${4:-}"

# Old releases go once nothing runs from them and no sandbox names them; the current one and the one before stay (a
# forwarder, or a worker in a sandbox, started by the previous release may still be running it). A sandbox's bundle
# binds the daemon and the worker of the release that booted it, and a hibernated sandbox runs nothing (no process maps
# them) but needs those very files to wake: CRIU restores the binaries it dumped.
# The bundles are inside the engine's data volume. With the volume's image there but not mounted (after a reboot,
# before the engine started, or when it failed to start, which is when people upgrade) no bundle can be read, and a
# release a hibernated sandbox needs would look unused: keep every release until the engine has mounted it again.
if [ -e "$state/engine/volume.img" ] && ! mountpoint -q "$state/engine/volume" 2>/dev/null; then
  echo "    keeping every old release: the engine's data volume ($state/engine/volume.img) is not mounted, so which releases its sandboxes need cannot be read; the next install prunes"
  exit 0
fi

for old in "$prefix"/releases/*/; do
  old="${old%/}"
  name="releases/$(basename "$old")"
  [ "$name" = "$version_name" ] || [ "$name" = "$previous" ] && continue
  # A release built for later (install.sh --build-only) and never made current is the operator's to activate.
  if [ ! -e "$old/.activated" ]; then
    echo "    keeping $old: built, never activated (install.sh --activate $(basename "$old"))"
    continue
  fi
  # Only the engine's own bundle files, never a walk of the volume (sandboxes' roots and disks are mounted there).
  if grep -qsF "$old/" "$state"/engine/volume/sandboxes/*/bundle/config.json 2>/dev/null; then
    echo "    keeping $old: a sandbox (running, frozen or hibernated) was booted from it"
    continue
  fi
  if grep -qsF "$old/" /proc/[0-9]*/maps 2>/dev/null; then
    echo "    keeping $old: a process still runs from it"
    continue
  fi
  rm -rf "$old"
done
