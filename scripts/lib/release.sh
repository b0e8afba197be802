# Sourced by scripts/install.sh and scripts/package.sh: what a release is and how one is built from a clone, in one
# place, so that installing from a clone and packaging for an install without one cannot drift apart.
# A release directory holds `hands` (self-contained .NET with its assemblies), every native binary below (NativeAOT),
# uninstall.sh, README.md and VERSION.

# The NativeAOT binaries a release carries beside `hands`, as "NAME PROJECT". Adding one is one line here.
release_native_binaries=(
  "hands-worker src/Hands.Worker"
  "hands-sandboxd src/Hands.SandboxDaemon"
  "hands-receiver src/Hands.Receiver"
)

# The installer's own files a package carries (paths relative to scripts/ in a clone, to the package's root in one).
release_installer_files=(install.sh uninstall.sh lib/release.sh lib/prerequisites.sh lib/criu.sh lib/prune-releases.sh)

# A version from the clone at $1: Directory.Build.props' <Version>, the commit (-dirty when the work tree differs) and
# the build time, e.g. 0.1.0-6029894abc-20261130173700.
release_default_version() {
  local repo="$1" base commit
  base=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props")
  commit=$(git -C "$repo" rev-parse --short=10 HEAD 2>/dev/null || echo nogit)
  git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit-dirty"
  echo "$base-$commit-$(date -u +%Y%m%d%H%M%S)"
}

# Refuses a version that could escape PREFIX/releases or a file name.
release_check_version() {
  case "$1" in
    *[!A-Za-z0-9._-]*|""|.*) echo "version '$1' may hold only letters, digits, '.', '_' and '-' (not first)" >&2; return 2 ;;
  esac
}

# Builds release $2 from the clone at $1 into the empty directory $3 (needs the .NET SDK, clang and zlib1g-dev).
release_build() {
  local repo="$1" version="$2" out="$3" work entry name project
  work=$(mktemp -d)
  echo "==> building release $version (hands self-contained; ${release_native_binaries[*]%% *} NativeAOT)"
  dotnet publish "$repo/src/Hands.Cli" --configuration Release --runtime linux-x64 --self-contained --output "$out" \
    --nologo -v quiet -p:InformationalVersion="$version" || { rm -rf "$work"; return 1; }
  for entry in "${release_native_binaries[@]}"; do
    read -r name project <<<"$entry"
    dotnet publish "$repo/$project" --configuration Release --runtime linux-x64 --output "$work/$name" \
      --nologo -v quiet -p:InformationalVersion="$version" || { rm -rf "$work"; return 1; }
    install -m 755 "$work/$name/$name" "$out/$name"
  done
  rm -rf "$work"
  install -m 755 "$repo/scripts/uninstall.sh" "$out/uninstall.sh"
  install -m 644 "$repo/README.md" "$out/README.md"
  echo "$version" > "$out/VERSION"
}

# Whether directory $1 is a complete release: `hands`, every native binary, uninstall.sh and VERSION.
release_is_complete() {
  local dir="$1" entry
  [ -x "$dir/hands" ] && [ -x "$dir/uninstall.sh" ] && [ -s "$dir/VERSION" ] || return 1
  for entry in "${release_native_binaries[@]}"; do
    [ -x "$dir/${entry%% *}" ] || return 1
  done
}
