#!/bin/sh
# Prepares a fresh Debian 12 machine to build and run mod_wsgi: Debian's packages, npm dependencies, build.
# As root it installs what is missing; otherwise it prints the one apt-get line to run and stops.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="apache2 apache2-dev libpython3.11-dev python3-django python3-flask"
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
