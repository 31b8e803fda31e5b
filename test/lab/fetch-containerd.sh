#!/usr/bin/env bash
# Fetches the containerd versions the lab runs besides bookworm's 1.6: 1.7 (trixie) and 2.1
# (unstable), as Debian packages, without touching the system's apt configuration, and unpacks
# them under $NODEDIAG_LAB_PKGS (default /srv/nodediag-pkgs): containerd-1.7/usr/bin/…,
# containerd-2.1/usr/bin/…  Lab nodes bind-mount these binaries over /usr/bin in their own mount
# namespace; nothing is installed system-wide. Idempotent.
set -euo pipefail
dest=${NODEDIAG_LAB_PKGS:-/srv/nodediag-pkgs}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$dest/apt/lists/partial" "$dest/apt/cache/archives/partial" "$dest/debs"
cat > "$dest/apt/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main
SOURCES
apt_opts=(-o "Dir::Etc::SourceList=$dest/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt/cache")
need=()
for v in 1.7 2.1; do [ -x "$dest/containerd-$v/usr/bin/containerd" ] || need+=("$v"); done
[ ${#need[@]} -eq 0 ] && { echo "containerd 1.7 and 2.1 already in $dest"; exit 0; }
apt-get "${apt_opts[@]}" update -qq
for v in "${need[@]}"; do
  case $v in 1.7) suite=trixie ;; 2.1) suite=sid ;; esac
  version=$(apt-cache "${apt_opts[@]}" madison containerd | awk -v s="$suite" '$0 ~ (" " s "/") { print $3; exit }')
  case $version in
    "$v".*) ;;
    # Unstable moves on: another 2.x still runs the lab's 2.x nodes (config version 3); say so.
    2.*) [ "$v" = 2.1 ] && echo "fetch-containerd: note: $suite now has containerd $version; the lab's 2.1 nodes run it" >&2 ;;
    *) echo "fetch-containerd: $suite has containerd \"$version\", not $v.x; update the lab (test/lab/lab.ts CONTAINERD_VERSIONS)" >&2; exit 1 ;;
  esac
  (cd "$dest/debs" && apt-get "${apt_opts[@]}" download "containerd=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  rm -rf "$dest/containerd-$v" && mkdir -p "$dest/containerd-$v"
  dpkg-deb -x "$dest/debs/containerd_${version//:/%3a}_amd64.deb" "$dest/containerd-$v"
  "$dest/containerd-$v/usr/bin/containerd" --version
done
