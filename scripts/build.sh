#!/bin/sh
# Builds the three parts of mod_wsgi: the CPython addon (node-gyp), the TypeScript daemon (tsc) and the
# Apache module (apxs). Usage:
#   scripts/build.sh [all|addon|ts|apache]
#   scripts/build.sh addon --python /path/to/bin/python3.N [--python ...]
# The addon is built for Debian's CPython 3.11 (build/Release/wsgi_bridge.node), plus one per Python
# listed in MOD_WSGI_PYTHONS (space separated), each into build/py3.N/. With --python, only for those.
# A Python may be an installation's bin/python3.N or a virtualenv's bin/python (its base is used).
# Each prerequisite is checked first so that a missing one gives one clear line, not a compiler trace.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
what=${1:-all}
[ $# -gt 0 ] && shift
pythons=""
while [ $# -gt 0 ]; do
    case "$1" in
        --python) [ $# -ge 2 ] || { echo "mod_wsgi build: --python needs a path" >&2; exit 1; }
                  pythons="$pythons $2"; shift 2 ;;
        --python=*) pythons="$pythons ${1#--python=}"; shift ;;
        *) echo "mod_wsgi build: unknown argument '$1'" >&2; exit 1 ;;
    esac
done

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

# node-gyp would download Node's headers; the machine has them under /usr (Debian/nodesource nodejs).
node_gyp() {
    [ -f "$here/node_modules/node-addon-api/package.json" ] ||
        fail "node-addon-api is missing: run 'npm ci' first"
    nodedir=${npm_config_nodedir:-}
    if [ -z "$nodedir" ]; then
        if [ -f /usr/include/node/node_api.h ]; then nodedir=/usr; else nodedir=$(dirname "$(dirname "$NODE")"); fi
    fi
    [ -f "$nodedir/include/node/node_api.h" ] ||
        fail "Node's headers not found under $nodedir/include/node: install the nodejs package with headers"
    gyp="$here/node_modules/.bin/node-gyp"
    [ -x "$gyp" ] || gyp="$(dirname "$NODE")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
    # configure + build, never rebuild/clean: those delete build/, which also holds mod_wsgi.so.
    if ! [ -f build/Makefile ] || [ binding.gyp -nt build/Makefile ] || [ "$here/native/addon/addon.gypi" -nt build/Makefile ]; then
        "$NODE" "$gyp" configure --nodedir="$nodedir" --loglevel=warn
    fi
    "$NODE" "$gyp" build --nodedir="$nodedir" --loglevel=warn --jobs="${MOD_WSGI_BUILD_JOBS:-max}"
}

# The default addon: Debian's CPython (PYTHON_CONFIG), build/Release/wsgi_bridge.node.
build_default_addon() {
    need_python
    PYTHON_CONFIG="$PYTHON_CONFIG" node_gyp
    # Which CPython this build embeds, for src/native/python-select.ts.
    "$PYTHON_CONFIG" --includes | sed -n 's|.*/python\(3\.[0-9][0-9]*\).*|\1|p' | head -n 1 >build/Release/python-version
}

# What the addon build needs to know of a Python, as shell assignments (the Python itself answers: a
# virtualenv's python reports its base installation).
PY_PROBE='
import os, sys, sysconfig
v = sysconfig.get_config_var
soname = v("INSTSONAME") or ""
libdir = os.path.join(sys.base_prefix, "lib")
lib = ""
# Under the installation itself, where the daemon looks for it too (src/native/python-select.ts).
for d in (libdir, os.path.join(libdir, v("MULTIARCH") or ""), os.path.join(sys.base_prefix, "lib64")):
    if soname and ".so" in soname and os.path.isfile(os.path.join(d, soname)):
        lib, libdir = os.path.join(d, soname), d
        break
print("py_version=%d.%d" % sys.version_info[:2])
print("py_include=%s" % sysconfig.get_paths()["include"])
print("py_libdir=%s" % libdir)
print("py_lib=%s" % lib)
print("py_ldname=%s" % (v("LDLIBRARY") or ""))
print("py_shared=%s" % (v("Py_ENABLE_SHARED") or 0))
print("py_nogil=%s" % (v("Py_GIL_DISABLED") or 0))
print("py_prefix=%s" % sys.base_prefix)
'

# The addon for one more Python: build/py3.N/wsgi_bridge.node (and its python_preload.node).
build_python_addon() {
    py=$1
    [ -x "$py" ] && [ ! -d "$py" ] || fail "$py is not a Python executable (give bin/python3.N of the installation or virtualenv)"
    info=$("$py" -I -c "$PY_PROBE" 2>/dev/null) || fail "$py does not run (is it a Python 3 executable?)"
    py_version="" py_include="" py_libdir="" py_lib="" py_ldname="" py_shared=0 py_nogil=0 py_prefix=""
    eval "$info"
    minor=${py_version#3.}
    case "$py_version" in
        3.*) [ "$minor" -ge 8 ] && [ "$minor" -le 13 ] ||
                 fail "$py is Python $py_version: this mod_wsgi embeds CPython 3.8 to 3.13" ;;
        *) fail "$py is Python $py_version: this mod_wsgi embeds CPython 3.8 to 3.13" ;;
    esac
    [ "$py_nogil" = 0 ] ||
        fail "$py is a free-threaded build of Python $py_version, which is not supported: use its default (GIL) build"
    [ "$py_shared" = 1 ] && [ -n "$py_lib" ] ||
        fail "$py (Python $py_version under $py_prefix) has no shared libpython$py_version.so and cannot be embedded: rebuild it with --enable-shared (pyenv: env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install $py_version), or use a build that has one (Debian/Ubuntu or deadsnakes packages, uv python install)"
    [ -f "$py_include/Python.h" ] ||
        fail "Python.h of Python $py_version not found under $py_include: install its development files (Debian/Ubuntu: apt-get install python$py_version-dev)"
    lib=${py_ldname#lib}
    lib=${lib%%.so*}
    dir="$here/build/py$py_version"
    mkdir -p "$dir"
    gypfile="{ 'includes': ['../../native/addon/addon.gypi'] }  # written by scripts/build.sh"
    [ "$(cat "$dir/binding.gyp" 2>/dev/null)" = "$gypfile" ] || printf '%s\n' "$gypfile" >"$dir/binding.gyp"
    rpath=""
    case "$py_libdir" in /usr/lib | /usr/lib/* | /lib | /lib/*) ;; *) rpath="-Wl,-rpath,$py_libdir" ;; esac
    # One build per version at a time: mod_wsgi-express and tests may ask for the same one at once.
    (
        flock 9
        cd "$dir"
        MOD_WSGI_PY_CFLAGS="-I$py_include" MOD_WSGI_PY_LDFLAGS="-L$py_libdir $rpath" MOD_WSGI_PY_LIBS="-l$lib" node_gyp
        # Replaced, never overwritten in place: running daemons have the old file mapped.
        for f in wsgi_bridge python_preload; do
            cp "build/Release/$f.node" "$f.node.new" && mv -f "$f.node.new" "$f.node"
        done
        printf '%s\n' "$py_version" >python-version
        chmod 755 . ./*.node
    ) 9>"$dir.lock"
    echo "mod_wsgi build: built build/py$py_version/wsgi_bridge.node for $py ($py_lib)"
}

build_addon() {
    if [ -n "$pythons" ]; then
        for py in $pythons; do build_python_addon "$py"; done
        return
    fi
    build_default_addon
    for py in ${MOD_WSGI_PYTHONS:-}; do build_python_addon "$py"; done
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
