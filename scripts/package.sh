#!/usr/bin/env bash
# Builds a package a server installs from with no .NET SDK and no clone: hands-VERSION-linux-x64.tar.gz, holding
# release/ (the release scripts/install.sh would build: `hands` self-contained, the NativeAOT binaries of
# scripts/lib/release.sh, uninstall.sh, README.md, VERSION), the installer itself (install.sh, uninstall.sh, lib/) and
# README.md. On the server:
#   tar -xzf hands-VERSION-linux-x64.tar.gz && cd hands-VERSION-linux-x64 && sudo ./install.sh
# takes the same options as scripts/install.sh and does the same install, copying release/ instead of building it.
#
# Usage: scripts/package.sh [--version V] [--output DIR]   (default version: as install.sh's; default DIR: artifacts/packages)
# Prints the package's path. Needs the .NET SDK, clang and zlib1g-dev (the NativeAOT build), as install.sh from a clone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$here/lib/release.sh"

version="" output="$repo/artifacts/packages"
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
[ -n "$version" ] || version=$(release_default_version "$repo")
release_check_version "$version" || exit 2

name="hands-$version-linux-x64"
mkdir -p "$output"
output="$(cd "$output" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022
mkdir -p "$work/$name/release" "$work/$name/lib"
release_build "$repo" "$version" "$work/$name/release" >&2
release_is_complete "$work/$name/release" || { echo "package.sh: the built release is incomplete" >&2; exit 1; }
for file in "${release_installer_files[@]}"; do
  install -m "$([ "${file##*.}" = sh ] && echo 755 || echo 644)" "$here/$file" "$work/$name/$file"
done
install -m 644 "$repo/README.md" "$work/$name/README.md"
# Root-owned in the archive whoever builds it: the release lands root-owned under PREFIX as it would from a clone.
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$output/$name.tar.gz.partial" "$name"
mv "$output/$name.tar.gz.partial" "$output/$name.tar.gz"
echo "$output/$name.tar.gz"
