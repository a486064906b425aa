#!/bin/sh
# Prepares a fresh Debian 12 machine to build and run mod_wsgi: Debian's packages, npm dependencies, build.
# As root it installs what is missing; otherwise it prints the one apt-get line to run and stops.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="apache2 apache2-dev libpython3.11-dev python3-django python3-flask"
# ASGI applications (docs/asgi.md): the frameworks and clients of test/asgi/, uvloop (asgi-loop=uvloop),
# and uvicorn with httptools, the server bench/asgi.ts compares against.
PACKAGES="$PACKAGES python3-starlette python3-fastapi python3-django-channels python3-httpx python3-uvloop python3-uvicorn python3-httptools"
# WebSocket (test/websocket/, bench/websocket.ts): Python's websockets as a client (and uvicorn's
# WebSocket side in the bench), and a browser's WebSocket in headless Chromium.
PACKAGES="$PACKAGES python3-websockets chromium"
# Tools only for bench/ and the tests: wrk (load), strace, clang with libFuzzer for the fuzz run on the
# module's C decoder (test/fuzz/c-decoder.test.ts); HAProxy, iproute2 (ip netns) and curl for
# test/reliability/scale-out.test.ts (several Apaches in network namespaces behind a balancer), and
# python3-yaml to check the Kubernetes and Compose files of apache-conf/ (test/packaging/manifests);
# Prometheus (its server and promtool) to scrape wsgi-metrics in test/apache/prometheus.test.ts.
EXTRA=${MOD_WSGI_SETUP_EXTRA-"wrk strace clang-14 libclang-rt-14-dev haproxy iproute2 curl python3-yaml prometheus"}
# Apache modules only for bench/ (the original mod_wsgi, side by side) and the test that Apache refuses
# mod_python beside mod_wsgi. They are unpacked under build/debian, never installed: installing them
# would enable them in the system's Apache.
MODULE_PACKAGES=${MOD_WSGI_SETUP_MODULES-"libapache2-mod-wsgi-py3 libapache2-mod-python"}

missing=""
for p in $PACKAGES $EXTRA; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "mod_wsgi setup: these Debian packages are needed; run as root:" >&2
        echo "  apt-get install -y$missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q $missing >/dev/null
fi
command -v node >/dev/null || { echo "mod_wsgi setup: Node.js 20 or later is needed (nodejs)" >&2; exit 1; }

for p in $MODULE_PACKAGES; do
    [ -f "build/debian/.$p" ] && continue
    mkdir -p build/debian
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -q "$p" >/dev/null 2>&1) && dpkg-deb -x "$tmp"/"$p"_*.deb build/debian; then
        touch "build/debian/.$p"
    else
        echo "mod_wsgi setup: could not fetch $p (only bench/ and one test use it)" >&2
    fi
    rm -rf "$tmp"
done

export npm_config_nodedir=${npm_config_nodedir:-/usr}
npm ci --no-audit --no-fund --loglevel=error
sh scripts/build.sh all
echo "mod_wsgi setup: built build/mod_wsgi.so, lib/ and the CPython addon"

# The addon for other CPythons (build/py3.N/): those listed in MOD_WSGI_PYTHONS (their bin/python3.N,
# space separated), else pyenv's newest 3.9, 3.10, 3.12 and 3.13 with a shared libpython when this
# machine has them, which the tests embed besides Debian's 3.11 (test/helpers/pythons.ts; 3.8 is left
# to the test that builds one on first use). MOD_WSGI_PYTHONS="" builds none. A Python whose build
# fails is reported and skipped: its tests then build it themselves or report it skipped.
if [ -z "${MOD_WSGI_PYTHONS+set}" ]; then
    versions_dir=${PYENV_ROOT:-${HOME:-/root}/.pyenv}/versions
    MOD_WSGI_PYTHONS=""
    for v in 3.9 3.10 3.12 3.13; do
        newest=$(ls -d "$versions_dir/$v".* 2>/dev/null | grep -E "/$v\.[0-9]+\$" | sort -t. -k3 -n | tail -n 1)
        if [ -n "$newest" ] && [ -x "$newest/bin/python$v" ] && [ -f "$newest/lib/libpython$v.so.1.0" ]; then
            MOD_WSGI_PYTHONS="$MOD_WSGI_PYTHONS $newest/bin/python$v"
        fi
    done
fi
for py in $MOD_WSGI_PYTHONS; do
    sh scripts/build.sh addon --python "$py" >/dev/null 2>build/setup-python.log ||
        { cat build/setup-python.log >&2; echo "mod_wsgi setup: could not build the addon for $py (see above); skipped" >&2; }
done
rm -f build/setup-python.log
