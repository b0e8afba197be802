#!/usr/bin/env bash
# Provisions CRIU >= 4.2 into a private prefix without touching the host's packages.
# Debian 12's criu 3.17 fails `criu check` on kernels >= 6.13 (vvar_vclock split). Debian 13's 4.1.1 passes the check
# but cannot dump a TCP socket on kernels >= 6.16 (getsockopt SO_PASSCRED/SO_PASSSEC on inet sockets now answers
# EOPNOTSUPP), which every sandbox has; 4.2 handles it. So we take criu from Debian unstable (HANDS_CRIU_SUITE) and its
# libraries with a separate apt state directory, unpack them with dpkg-deb -x, and run criu through the prefix's own
# loader (reference/local-sandbox-engine.md, addendum).
# Usage: scripts/lib/criu.sh [PREFIX]   (default /opt/hands/criu). Prints the wrapper path on success.
set -euo pipefail

prefix="${1:-/opt/hands/criu}"
wrapper="$prefix/criu"

if [[ -x "$wrapper" ]] && "$wrapper" --version 2>/dev/null | grep -Eq 'Version: (4\.([2-9]|[1-9][0-9])|[5-9])'; then
  echo "$wrapper"
  exit 0
fi
rm -rf "$prefix/root"

mirror="${HANDS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs" "$prefix"
cat > "$state/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror ${HANDS_CRIU_SUITE:-sid} main
SOURCES
apt_opts=(-o "Dir::State=$state" -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
  -o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State::status=$state/status" -o "APT::Architecture=amd64" -o "Debug::NoLocking=1")
touch "$state/status"
echo "criu: reading the ${HANDS_CRIU_SUITE:-sid} package index from $mirror" >&2
apt-get "${apt_opts[@]}" -q update >/dev/null

# The dependency closure of criu in trixie, resolved against an empty status file (nothing counts as installed).
mapfile -t packages < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances criu | grep -v '^ ' | grep -v '^<' | sort -u)
echo "criu: downloading ${#packages[@]} packages" >&2
(cd "$state/debs" && apt-get "${apt_opts[@]}" -q download "${packages[@]}" >/dev/null 2>&1 || true)
for deb in "$state"/debs/*.deb; do
  dpkg-deb -x "$deb" "$prefix/root"
done

lib="$prefix/root/usr/lib/x86_64-linux-gnu"
loader="$lib/ld-linux-x86-64.so.2"
[[ -e "$loader" ]] || loader="$prefix/root/lib64/ld-linux-x86-64.so.2"
cat > "$wrapper" <<WRAPPER
#!/bin/sh
exec "$loader" --library-path "$lib" "$prefix/root/usr/sbin/criu" "\$@"
WRAPPER
chmod 755 "$wrapper"
"$wrapper" --version >&2
echo "$wrapper"
