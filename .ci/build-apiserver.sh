#!/usr/bin/env bash
# Builds a REAL Kubernetes API server for the custom-resource tests: upstream
# apiextensions-apiserver, from Debian unstable's Go packages (Go 1.27 and
# golang-k8s-apiextensions-apiserver-dev with its closure, ~350 MB), with the
# small standalone main in test/apiserver/main.go. Nothing is installed
# system-wide: the packages are downloaded and unpacked under $dest.
# Prints the binary's path on its last line; exits 1, saying why, when it cannot
# (unstable moves: a library transition can break the build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${NODEDIAG_APISERVER_DIR:-/srv/nodediag-apiserver}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
bin="$dest/nodediag-apiserver"
stamp="$dest/main.go.sha256"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$(sha256sum < "$root/test/apiserver/main.go")" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dest/apt/lists/partial" "$dest/apt/archives/partial" "$dest/root" "$dest/gopath/src/nodediag-apiserver"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" > "$dest/apt/sources.list"
: > "$dest/apt/status"
# An empty status file: apt resolves the whole closure and downloads it; nothing is installed.
apt_opts=(-o "Dir::Etc::SourceList=$dest/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$dest/apt/lists"
  -o "Dir::State::status=$dest/apt/status" -o "Dir::Cache=$dest/apt/cache" -o "Dir::Cache::archives=$dest/apt/archives" -o APT::Install-Recommends=false)
apt-get "${apt_opts[@]}" -qq update
go_pkg=$(apt-cache "${apt_opts[@]}" depends golang-go 2>/dev/null | awk '/Depends: golang-1\.[0-9]+-go$/ { print $2; exit }')
go_version=${go_pkg#golang-}; go_version=${go_version%-go}
[ -n "$go_version" ] || { echo "build-apiserver: cannot tell which Go unstable ships" >&2; exit 1; }
if ! apt-get "${apt_opts[@]}" -qq install --download-only -y "golang-$go_version-go" "golang-$go_version-src" golang-k8s-apiextensions-apiserver-dev > "$dest/download.log" 2>&1; then
  echo "build-apiserver: cannot download the packages (see $dest/download.log):" >&2
  tail -5 "$dest/download.log" >&2
  exit 1
fi
for deb in "$dest"/apt/archives/*.deb; do dpkg-deb -x "$deb" "$dest/root"; done
cp "$root/test/apiserver/main.go" "$dest/gopath/src/nodediag-apiserver/main.go"
export GOROOT="$dest/root/usr/lib/go-$go_version" GOPATH="$dest/gopath:$dest/root/usr/share/gocode" GO111MODULE=off CGO_ENABLED=0 GOCACHE="$dest/gocache" GOTOOLCHAIN=local GOFLAGS=
if ! (cd "$dest/gopath/src/nodediag-apiserver" && "$GOROOT/bin/go" build -o "$bin" .) > "$dest/build.log" 2>&1; then
  echo "build-apiserver: the build failed (see $dest/build.log; Debian unstable may be in a library transition):" >&2
  tail -15 "$dest/build.log" >&2
  exit 1
fi
sha256sum < "$root/test/apiserver/main.go" > "$stamp"
echo "$bin"
