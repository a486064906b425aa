#!/bin/sh
# Builds the three parts of mod_wsgi: the CPython addon (node-gyp), the TypeScript daemon (tsc) and the
# Apache module (apxs). Usage: scripts/build.sh [all|addon|ts|apache]
# Each prerequisite is checked first so that a missing one gives one clear line, not a compiler trace.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
what=${1:-all}

# Debian's CPython is embedded, never the python3 first on PATH (it may be a pyenv build). Its
# python3.11-config comes with python3.11-dev; libpython3.11-dev alone (what setup.sh and the Docker
# image install) has the same script under its multiarch name only.
if [ -z "${PYTHON_CONFIG:-}" ]; then
    PYTHON_CONFIG=/usr/bin/python3.11-config
    if ! [ -x "$PYTHON_CONFIG" ]; then
        for c in /usr/bin/*-linux-gnu*-python3.11-config; do
            if [ -x "$c" ]; then PYTHON_CONFIG=$c; break; fi
        done
    fi
fi
APXS=${APXS:-$(command -v apxs || command -v apxs2 || true)}
NODE=${MOD_WSGI_NODE:-$(command -v node)}

fail() {
    echo "mod_wsgi build: $*" >&2
    exit 1
}

need_python() {
    [ -x "$PYTHON_CONFIG" ] ||
        fail "$PYTHON_CONFIG not found: install Debian's libpython3.11-dev (apt-get install libpython3.11-dev)"
    inc=$("$PYTHON_CONFIG" --includes | sed 's/^-I\([^ ]*\).*/\1/')
    [ -f "$inc/Python.h" ] ||
        fail "Python.h not found under $inc: install Debian's libpython3.11-dev (apt-get install libpython3.11-dev)"
    "$PYTHON_CONFIG" --embed --ldflags | grep -q -- '-lpython3' ||
        fail "$PYTHON_CONFIG --embed gives no libpython: install Debian's libpython3.11-dev"
}

need_apxs() {
    [ -n "$APXS" ] && [ -x "$APXS" ] ||
        fail "apxs not found: install Debian's apache2-dev (apt-get install apache2-dev), or set APXS=/path/to/apxs"
}

build_addon() {
    need_python
    [ -f node_modules/node-addon-api/package.json ] ||
        fail "node-addon-api is missing: run 'npm ci' first"
    # node-gyp would download Node's headers; the machine has them under /usr (Debian/nodesource nodejs).
    nodedir=${npm_config_nodedir:-}
    if [ -z "$nodedir" ]; then
        if [ -f /usr/include/node/node_api.h ]; then nodedir=/usr; else nodedir=$(dirname "$(dirname "$NODE")"); fi
    fi
    [ -f "$nodedir/include/node/node_api.h" ] ||
        fail "Node's headers not found under $nodedir/include/node: install the nodejs package with headers"
    gyp="node_modules/.bin/node-gyp"
    [ -x "$gyp" ] || gyp="$(dirname "$NODE")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
    # configure + build, never rebuild/clean: those delete build/, which also holds mod_wsgi.so.
    if ! [ -f build/Makefile ] || [ binding.gyp -nt build/Makefile ]; then
        PYTHON_CONFIG="$PYTHON_CONFIG" "$NODE" "$gyp" configure --nodedir="$nodedir" --loglevel=warn
    fi
    PYTHON_CONFIG="$PYTHON_CONFIG" "$NODE" "$gyp" build --nodedir="$nodedir" --loglevel=warn
}

build_ts() {
    [ -x node_modules/.bin/tsc ] || fail "typescript is missing: run 'npm ci' first"
    node_modules/.bin/tsc -p tsconfig.json
}

build_apache() {
    need_apxs
    main="$here/lib/daemon/main.js"
    mkdir -p build
    # apxs (libtool) leaves its objects beside the sources; build from a copy to keep native/ clean.
    rm -rf build/apache && mkdir -p build/apache && cp native/apache/*.c native/apache/*.h build/apache/ 2>/dev/null || true
    ls build/apache/*.c >/dev/null 2>&1 || fail "no sources under native/apache"
    (cd build/apache && "$APXS" -c -o mod_wsgi.la \
        -I"$here/native/common" \
        -Wc,-Wall -Wc,-Wextra -Wc,-Wno-unused-parameter -Wc,-Wno-missing-field-initializers \
        "-DMOD_WSGI_NODE=\\\"$NODE\\\"" \
        "-DMOD_WSGI_DAEMON_MAIN=\\\"$main\\\"" \
        ./*.c >build.log 2>&1) || { cat build/apache/build.log >&2; fail "apxs failed (log above)"; }
    # Replace, never overwrite in place: running Apaches have the old file mapped (cp onto it crashes them).
    cp build/apache/.libs/mod_wsgi.so build/mod_wsgi.so.new && mv -f build/mod_wsgi.so.new build/mod_wsgi.so
    # Apache's children (User www-data) and daemons load from here: keep it readable.
    chmod 755 build build/mod_wsgi.so
}

case "$what" in
    addon) build_addon ;;
    ts) build_ts ;;
    apache) build_apache ;;
    all) build_addon; build_ts; build_apache ;;
    *) fail "unknown target '$what' (all, addon, ts, apache)" ;;
esac
