#!/bin/sh
# Copies the current build of this tree (lib/, build/mod_wsgi.so, build/Release/wsgi_bridge.node) to DIR,
# so that bench/measure.ts and bench/run.ts can run it beside a later build: --servers DIR,ours.
# Usage: sh bench/snapshot.sh DIR   (DIR must be readable by www-data, e.g. under /tmp)
set -eu
[ $# -eq 1 ] || { echo "usage: sh bench/snapshot.sh DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
mkdir -p "$dir/build/Release"
rm -rf "$dir/lib"
cp -r "$here/lib" "$dir/lib"
cp "$here/build/mod_wsgi.so" "$dir/build/mod_wsgi.so"
cp "$here/build/Release/wsgi_bridge.node" "$dir/build/Release/wsgi_bridge.node"
chmod -R a+rX "$dir"
echo "$dir"
