#!/bin/sh
# Builds mod_wsgi (with its TypeScript daemon) from this checkout and installs it into an Apache httpd laid
# out like the official Docker image's /usr/local/apache2 (bin/, conf/, modules/, logs/):
#   - mod_wsgi.so into modules/ (mod_wsgi-express install-module, a copy as apxs -i makes),
#   - the sample Flask app as wsgi/app.wsgi,
#   - at the end of conf/httpd.conf, between marker lines (replaced on a re-run): the LoadModule line and
#     a WSGIDaemonProcess serving the app at /,
#   - User and Group www-data for Apache's children and the daemons,
# then checks the configuration with bin/httpd -t.
#
# The Dockerfile beside this runs it; test/packaging/docker.test.ts runs it against a throwaway prefix
# (with --skip-build: the suite has built the checkout already).
#
# Usage: install-mod_wsgi.sh [--prefix DIR] [--skip-build]
set -eu

checkout=$(cd "$(dirname "$0")/../.." && pwd)
prefix=/usr/local/apache2
build=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install-mod_wsgi: --prefix needs a directory" >&2; exit 2; }
                  prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --skip-build) build=no; shift ;;
        *) echo "usage: $0 [--prefix DIR] [--skip-build]" >&2; exit 2 ;;
    esac
done

fail() {
    echo "install-mod_wsgi: $*" >&2
    exit 1
}

for d in bin conf modules logs; do
    [ -d "$prefix/$d" ] || fail "$prefix/$d is missing: --prefix must be an Apache httpd laid out like /usr/local/apache2"
done
[ -x "$prefix/bin/httpd" ] || fail "$prefix/bin/httpd is missing or not executable"
conf=$prefix/conf/httpd.conf
[ -f "$conf" ] || fail "$conf is missing"
id www-data >/dev/null 2>&1 || fail "there is no user www-data to run Apache's children and the daemons"
command -v node >/dev/null 2>&1 || fail "node is not on PATH: Node.js 20 or later is needed"

cd "$checkout"
if [ "$build" = yes ]; then
    [ -x "$prefix/bin/apxs" ] || fail "$prefix/bin/apxs is missing: it builds the Apache module"
    [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund
    APXS=$prefix/bin/apxs sh scripts/build.sh all
fi
[ -f build/mod_wsgi.so ] && [ -f lib/express/cli.js ] || fail "this checkout is not built: run without --skip-build"

# Apache's children and the daemons (www-data) load lib/, build/ and python/ from the checkout.
chmod -R a+rX lib build python
d=$checkout
while [ "$d" != / ]; do
    chmod a+x "$d"
    d=$(dirname "$d")
done

node bin/mod_wsgi-express install-module --modules-directory "$prefix/modules"

mkdir -p "$prefix/wsgi"
cp apache-conf/sample/flask.wsgi "$prefix/wsgi/app.wsgi"
chmod -R a+rX "$prefix/wsgi"

# User/Group of the stock configuration (daemon) become www-data.
sed -i -e 's/^\([[:space:]]*\)User[[:space:]].*/\1User www-data/' \
       -e 's/^\([[:space:]]*\)Group[[:space:]].*/\1Group www-data/' "$conf"
grep -q '^[[:space:]]*User www-data' "$conf" || printf 'User www-data\nGroup www-data\n' >>"$conf"

# Our block, between marker lines: a re-run replaces it.
sed -i '/^# BEGIN mod_wsgi$/,/^# END mod_wsgi$/d' "$conf"
cat >>"$conf" <<EOF
# BEGIN mod_wsgi
# Added by apache-conf/docker/install-mod_wsgi.sh (a re-run replaces this block).
LoadModule wsgi_module modules/mod_wsgi.so

# The sample app at /, in two daemon processes of 15 threads. For your own app, change the script path
# (and the Directory block) or add a WSGIScriptAlias per app, each with its own WSGIDaemonProcess.
# graceful-timeout and shutdown-timeout bound the container's stop (STOPSIGNAL SIGWINCH): requests in
# flight get 5 s, then 3 s more before a 503, so that Apache exits within docker stop's 10 s. home: the
# daemons' working directory (www-data's home, /var/www, does not exist in the httpd image).
WSGIDaemonProcess app processes=2 threads=15 graceful-timeout=5 shutdown-timeout=3 home=$prefix/wsgi display-name=%{GROUP}
WSGIProcessGroup app
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / $prefix/wsgi/app.wsgi

<Directory $prefix/wsgi>
    Require all granted
</Directory>

# The health endpoint that apache-conf/kubernetes and apache-conf/compose probe: 200 while every daemon
# process group has a ready process and Apache is not stopping (its graceful stop, the image's
# STOPSIGNAL), else 503.
<Location /wsgi-health>
    SetHandler wsgi-health
</Location>
# END mod_wsgi
EOF

"$prefix/bin/httpd" -t
echo "install-mod_wsgi: mod_wsgi installed into $prefix; the sample app is served at /"
