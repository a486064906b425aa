#!/bin/sh
# Proves apache-conf/docker/Dockerfile as far as a machine without a Docker engine can: the image's steps
# are replayed in a debootstrapped Debian 12 root, and the result serves the sample app as a container
# would run it. Not part of CI: it takes minutes (5.5 on a busy 2-core machine, most of it building
# httpd; timings are printed).
#
#   1. Apache's release tarball from Debian's source archive (apt-get source --download-only, with a
#      private apt configuration: the machine's own sources, lists and cache are not touched), checked
#      against the upstream signature with the key Debian ships (debian/upstream/signing-key.asc).
#   2. debootstrap --variant=minbase bookworm, given the apt sources debian:bookworm-slim has.
#   3. The official httpd image's build (docker-library/httpd, 2.4/Dockerfile of the bookworm era): its
#      build dependencies, configure options and hardening flags, make install into /usr/local/apache2,
#      its edits of conf/httpd.conf (logs to /proc/self/fd/1 and 2, User/Group www-data), the purge of
#      the build dependencies, httpd-foreground.
#   4. Our Dockerfile's steps: Node.js copied in (COPY --from=node), apt-get install, COPY of the checkout
#      minus Dockerfile.dockerignore, install-mod_wsgi.sh --prefix /usr/local/apache2 with that tree's apxs.
#   5. The container: httpd-foreground as PID 1 of new PID, mount and network namespaces, in the root;
#      curl the sample app on port 80; then the STOPSIGNAL (SIGWINCH), as `docker stop` sends it, which
#      must stop Apache and its daemons well within docker stop's 10 s.
#
# The differences that remain from a real `docker build` are listed in apache-conf/docker/README.md.
#
# Usage (root): scripts/prove-httpd-image.sh [--keep] [--workdir DIR [--reuse]]
#   --keep     leave the work directory in place: the root, the logs, and a copy of the root as the
#              official image left it (httpd-layer/)
#   --workdir  where to work (default: a new directory under /var/tmp)
#   --reuse    start from DIR/httpd-layer of an earlier --keep run: only our Dockerfile's steps and the
#              container run again (about 4 minutes less)
# Environment: MIRROR (default http://deb.debian.org/debian), SECURITY_MIRROR
# (http://deb.debian.org/debian-security): the archives apt-get and debootstrap use.
set -eu

checkout=$(cd "$(dirname "$0")/.." && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PREFIX=/usr/local/apache2
keep=no
reuse=no
work=
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=yes; shift ;;
        --reuse) reuse=yes; shift ;;
        --workdir) [ $# -ge 2 ] || { echo "prove-httpd-image: --workdir needs a directory" >&2; exit 2; }
                   work=$2; shift 2 ;;
        *) echo "usage: $0 [--keep] [--workdir DIR [--reuse]]" >&2; exit 2 ;;
    esac
done
[ "$reuse" = no ] || [ -d "$work/httpd-layer" ] || { echo "prove-httpd-image: --reuse needs --workdir DIR with DIR/httpd-layer (from a --keep run)" >&2; exit 2; }

say() { echo "prove-httpd-image: $*"; }
fail() { echo "prove-httpd-image: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, chroot and namespaces need it)"
for tool in debootstrap unshare chroot ip curl gpg tar; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed (apt-get install debootstrap gpg iproute2 curl)"
done
[ -f "$KEYRING" ] || fail "$KEYRING is missing (apt-get install debian-archive-keyring)"
node=$(command -v node) || fail "node is needed: the image copies Node.js in, here from this machine"
nodeprefix=$(dirname "$(dirname "$(readlink -f "$node")")")
[ -f "$nodeprefix/include/node/node_api.h" ] || fail "Node's headers are not under $nodeprefix/include/node"
[ -d "$nodeprefix/lib/node_modules/npm" ] || fail "npm is not under $nodeprefix/lib/node_modules"

[ -n "$work" ] || work=$(mktemp -d /var/tmp/mod_wsgi-image.XXXXXX)
mkdir -p "$work"
chmod 755 "$work"
root=$work/root
ns=wsgi-image-$$
container=
pid1=
cleanup() {
    status=$?
    # Killing PID 1 of the container's PID namespace ends every process in it.
    [ -z "$pid1" ] || kill -KILL "$pid1" 2>/dev/null || true
    [ -z "$container" ] || kill -KILL "$container" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    if [ "$keep" = yes ] || [ $status -ne 0 ]; then
        say "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_all=$(date +%s)
t_step=$t_all
step() {
    now=$(date +%s)
    [ -z "${step_name:-}" ] || say "  $step_name: $((now - t_step)) s"
    t_step=$now
    step_name=$1
    say "$1"
}

# Every process below pid, from /proc.
descendants() {
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}

# Runs a shell command in the root as a Dockerfile RUN line does: /bin/sh -c, the image's environment
# and working directory, a fresh /proc of its own PID namespace, a minimal /dev, the host's network.
IMAGE_PATH=$PREFIX/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
in_root() {
    unshare --mount --propagation private --pid --fork --kill-child -- sh -eu -c '
        r=$1 cmd=$2 path=$3 workdir=$4
        mount -t proc proc "$r/proc"
        mount -t sysfs -o ro sysfs "$r/sys"
        mount -t tmpfs -o mode=755,nosuid tmpfs "$r/dev"
        for n in null zero full random urandom tty; do
            : >"$r/dev/$n"
            mount --bind "/dev/$n" "$r/dev/$n"
        done
        mkdir -p "$r/dev/shm" "$r/dev/pts"
        mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
        ln -s /proc/self/fd "$r/dev/fd"
        ln -s /proc/self/fd/0 "$r/dev/stdin"
        ln -s /proc/self/fd/1 "$r/dev/stdout"
        ln -s /proc/self/fd/2 "$r/dev/stderr"
        mkdir -p "$r$workdir"
        exec chroot "$r" /usr/bin/env -i PATH="$path" HOME=/root HOSTNAME=image \
            HTTPD_PREFIX='"$PREFIX"' DEBIAN_FRONTEND=noninteractive \
            /bin/sh -c "cd \"$workdir\" && $cmd"
    ' sh "$root" "$1" "$IMAGE_PATH" "${2:-$PREFIX}"
}

if [ "$reuse" = yes ]; then
step "1-3. reusing the root the official image's steps left in $work/httpd-layer"
rm -rf "$root"
cp -a "$work/httpd-layer" "$root"
upstream=$(sed -n 's/^upstream=//p' "$work/httpd-layer.info")
else
# ------------------------------------------------------------------------------------------------
step "1. Apache's release tarball from Debian's source archive"
apt=$work/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$work/src"
cat >"$apt/sources.list" <<EOF
deb-src [signed-by=$KEYRING] $MIRROR bookworm main
deb-src [signed-by=$KEYRING] $MIRROR bookworm-updates main
deb-src [signed-by=$KEYRING] $SECURITY_MIRROR bookworm-security main
EOF
# Only this directory: the machine's sources, lists and caches stay as they are.
set -- -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts" \
       -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" \
       -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root" -q
apt-get "$@" update >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log" >&2; fail "apt-get update (deb-src)"; }
# Newest first; a mirror may list a version whose files it does not hold (security archives often).
versions=$(apt-cache "$@" showsrc apache2 | sed -n 's/^Version: //p' | sort -rV | uniq)
[ -n "$versions" ] || fail "no source package apache2 in $MIRROR"
got=
for v in $versions; do
    if (cd "$work/src" && apt-get "$@" source --download-only "apache2=$v" >"$work/apt-source.log" 2>&1); then
        got=$v
        break
    fi
    say "  apache2 $v: not downloadable from this mirror ($(grep -m1 '^E:' "$work/apt-source.log" || true))"
    rm -f "$work/src"/apache2_*
done
[ -n "$got" ] || fail "could not download any version of the apache2 source package"
upstream=${got%-*}
tarball=$work/src/apache2_$upstream.orig.tar.gz
[ -f "$tarball" ] || fail "no orig tarball in the source package apache2 $got"
say "  apache2 $got: $(basename "$tarball"), sha256 $(sha256sum "$tarball" | cut -d' ' -f1)"
# The upstream signature, checked as the official image checks its download, against the release
# signing keys Debian's packaging carries (debian/upstream/signing-key.asc).
if [ -f "$tarball.asc" ]; then
    tar -xJf "$work/src/apache2_$got.debian.tar.xz" -C "$work/src" debian/upstream/signing-key.asc
    GNUPGHOME=$(mktemp -d) && export GNUPGHOME
    gpg --batch --quiet --import "$work/src/debian/upstream/signing-key.asc" 2>/dev/null
    gpg --batch --verify "$tarball.asc" "$tarball" 2>"$work/gpg.log" || { cat "$work/gpg.log" >&2; fail "the upstream signature does not verify"; }
    say "  upstream signature: $(grep -m1 'Good signature' "$work/gpg.log")"
    rm -rf "$GNUPGHOME"
    unset GNUPGHOME
else
    say "  (no upstream signature in this source package; apt checked the tarball against the signed Sources index)"
fi

# ------------------------------------------------------------------------------------------------
step "2. debootstrap a Debian 12 (bookworm) root"
debootstrap --variant=minbase --keyring="$KEYRING" bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
# The apt sources and the apt/dpkg settings of debian:bookworm-slim that matter for the build.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root 'apt-get -q update && apt-get -q -y upgrade' / >"$work/base-upgrade.log" 2>&1 ||
    { tail -20 "$work/base-upgrade.log" >&2; fail "apt-get upgrade in the root"; }

# ------------------------------------------------------------------------------------------------
step "3. the official httpd image: build httpd $upstream into $PREFIX"
in_root "mkdir -p $PREFIX && chown www-data:www-data $PREFIX" / 
in_root 'set -eux
    apt-get update
    apt-get install -y --no-install-recommends ca-certificates libaprutil1-ldap libldap-common
    rm -rf /var/lib/apt/lists/*' >"$work/httpd-runtime.log" 2>&1 || { tail -20 "$work/httpd-runtime.log" >&2; fail "httpd runtime dependencies"; }
mkdir -p "$root$PREFIX/src"
tar -xzf "$tarball" -C "$root$PREFIX/src" --strip-components=1
in_root 'set -eux
    saved=$(apt-mark showmanual)
    apt-get update
    apt-get install -y --no-install-recommends bzip2 dpkg-dev gcc gnupg libapr1-dev libaprutil1-dev \
        libbrotli-dev libcurl4-openssl-dev libjansson-dev liblua5.2-dev libnghttp2-dev libpcre3-dev \
        libssl-dev libxml2-dev make patch wget zlib1g-dev
    rm -r /var/lib/apt/lists/*
    cd src
    ./configure --build="$(dpkg-architecture --query DEB_BUILD_GNU_TYPE)" --prefix="$HTTPD_PREFIX" \
        --enable-mods-shared=reallyall --enable-mpms-shared=all --enable-pie \
        CFLAGS="-pipe $(dpkg-buildflags --get CFLAGS)" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" \
        LDFLAGS="-Wl,--as-needed $(dpkg-buildflags --get LDFLAGS)"
    make -j "$(nproc)"
    make install
    cd ..
    rm -r src man manual
    sed -ri -e "s!^(\s*CustomLog)\s+\S+!\1 /proc/self/fd/1!g" \
            -e "s!^(\s*ErrorLog)\s+\S+!\1 /proc/self/fd/2!g" \
            -e "s!^(\s*TransferLog)\s+\S+!\1 /proc/self/fd/1!g" \
            -e "s!^(\s*User)\s+daemon\s*\$!\1 www-data!g" \
            -e "s!^(\s*Group)\s+daemon\s*\$!\1 www-data!g" \
            "$HTTPD_PREFIX/conf/httpd.conf" "$HTTPD_PREFIX/conf/extra/httpd-ssl.conf"
    grep -E "^\s*User www-data\$" "$HTTPD_PREFIX/conf/httpd.conf"
    grep -E "^\s*Group www-data\$" "$HTTPD_PREFIX/conf/httpd.conf"
    # What the image keeps: the libraries its binaries link; the build dependencies go.
    apt-mark auto ".*" >/dev/null
    [ -z "$saved" ] || apt-mark manual $saved
    find /usr/local -type f -executable -exec ldd "{}" ";" \
        | awk "/=>/ { so = \$(NF-1); if (index(so, \"/usr/local/\") == 1) { next }; gsub(\"^/(usr/)?\", \"\", so); printf \"*%s\\n\", so }" \
        | sort -u | xargs -r dpkg-query --search | cut -d: -f1 | sort -u | xargs -r apt-mark manual
    apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false
    httpd -v' >"$work/httpd-build.log" 2>&1 || { tail -30 "$work/httpd-build.log" >&2; fail "building httpd as the official image does"; }
cat >"$root/usr/local/bin/httpd-foreground" <<'EOF'
#!/bin/sh
set -e
# A pid file left by an earlier run would make Apache refuse to start.
rm -f /usr/local/apache2/logs/httpd.pid
exec httpd -DFOREGROUND "$@"
EOF
chmod 755 "$root/usr/local/bin/httpd-foreground"
say "  $(in_root 'httpd -v' | head -1)"
if [ "$keep" = yes ]; then
    rm -rf "$work/httpd-layer"
    cp -a "$root" "$work/httpd-layer"
    echo "upstream=$upstream" >"$work/httpd-layer.info"
fi
fi

# ------------------------------------------------------------------------------------------------
step "4. apache-conf/docker/Dockerfile: Node.js, build tools, the checkout, install-mod_wsgi.sh"
# COPY --from=node (node:20-bookworm-slim keeps Node under /usr/local); here this machine's Node.js.
mkdir -p "$root/usr/local/bin" "$root/usr/local/include" "$root/usr/local/lib"
cp "$(readlink -f "$node")" "$root/usr/local/bin/node"
cp -a "$nodeprefix/include/node" "$root/usr/local/include/node"
cp -a "$nodeprefix/lib/node_modules" "$root/usr/local/lib/node_modules"
in_root 'ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm'
# The Dockerfile's RUN apt-get line, read from the Dockerfile itself so that the two cannot drift.
dockerfile=$checkout/apache-conf/docker/Dockerfile
aptline=$(awk '/^RUN apt-get update/ { run = 1 } run { more = /\\$/; sub(/\\$/, ""); printf "%s ", $0; if (!more) exit }' "$dockerfile")
aptline=${aptline#RUN }
[ -n "$aptline" ] || fail "no 'RUN apt-get update' line in $dockerfile"
in_root "set -eux; $aptline" >"$work/image-apt.log" 2>&1 || { tail -20 "$work/image-apt.log" >&2; fail "the Dockerfile's apt-get line"; }
# COPY . /usr/src/mod_wsgi, minus what Dockerfile.dockerignore leaves out of the build context.
set --
while IFS= read -r pattern; do
    case "$pattern" in
        ''|'#'*) ;;
        '**/'*) set -- "$@" --no-anchored "--exclude=${pattern#\*\*/}" ;;
        *) set -- "$@" --anchored "--exclude=./${pattern%/}" ;;
    esac
done <"$checkout/apache-conf/docker/Dockerfile.dockerignore"
mkdir -p "$root/usr/src/mod_wsgi"
tar -C "$checkout" "$@" -cf - . | tar -C "$root/usr/src/mod_wsgi" -xf -
# A network whose TLS is intercepted (this machine's egress) needs its CA for npm, as a docker build
# there would (a build secret or argument); the image's own trust store is left as it is.
extra_ca=
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    mkdir -p "$root/run/prove-httpd-image"
    cp "$NODE_EXTRA_CA_CERTS" "$root/run/prove-httpd-image/extra-ca.crt"
    extra_ca="NODE_EXTRA_CA_CERTS=/run/prove-httpd-image/extra-ca.crt "
fi
in_root "set -eux; ${extra_ca}sh /usr/src/mod_wsgi/apache-conf/docker/install-mod_wsgi.sh --prefix $PREFIX; rm -rf /run/prove-httpd-image" \
    >"$work/install-mod_wsgi.log" 2>&1 || { tail -30 "$work/install-mod_wsgi.log" >&2; fail "install-mod_wsgi.sh in the root"; }
grep -q 'Syntax OK' "$work/install-mod_wsgi.log" || fail "install-mod_wsgi.sh did not check the configuration"
say "  mod_wsgi.so: $(ls -l "$root$PREFIX/modules/mod_wsgi.so" | awk '{print $5}') bytes, built with $PREFIX/bin/apxs"

# ------------------------------------------------------------------------------------------------
step "5. the container: httpd-foreground as PID 1, curl the sample app, then the STOPSIGNAL (SIGWINCH)"
ip netns add "$ns"
ip -n "$ns" link set lo up
# A container's namespaces: network (its own port 80), PID (httpd is PID 1), mount (/proc, /dev).
# Docker names the container's host in its own UTS namespace and /etc/hosts.
printf '127.0.0.1\tlocalhost\n127.0.0.1\tcontainer\n' >"$root/etc/hosts"
ip netns exec "$ns" unshare --mount --propagation private --pid --uts --fork --kill-child -- sh -eu -c '
    r=$1 path=$2
    mount -t proc proc "$r/proc"
    mount -t sysfs -o ro sysfs "$r/sys"
    mount -t tmpfs -o mode=755,nosuid tmpfs "$r/dev"
    for n in null zero full random urandom tty; do : >"$r/dev/$n"; mount --bind "/dev/$n" "$r/dev/$n"; done
    mkdir -p "$r/dev/shm"; mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
    ln -s /proc/self/fd "$r/dev/fd"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"
    hostname container
    exec chroot "$r" /usr/bin/env -i PATH="$path" HOME=/root HOSTNAME=container HTTPD_PREFIX='"$PREFIX"' \
        /bin/sh -c "cd '"$PREFIX"' && exec httpd-foreground -c \"LogLevel info\""
' sh "$root" "$IMAGE_PATH" >"$work/container.stdout" 2>"$work/container.stderr" &
container=$!
body=
i=0
while [ $i -lt 300 ]; do
    body=$(ip netns exec "$ns" curl -sS --max-time 5 http://127.0.0.1/ 2>/dev/null || true)
    case "$body" in "Hello from Flask under mod_wsgi"*) break ;; esac
    kill -0 "$container" 2>/dev/null || { cat "$work/container.stderr" >&2; fail "the container exited"; }
    i=$((i + 1))
    sleep 0.2
done
case "$body" in
    "Hello from Flask under mod_wsgi"*) say "  GET / -> $body" ;;
    *) cat "$work/container.stderr" >&2; fail "the sample app did not answer on port 80 (got: $body)" ;;
esac
# httpd as PID 1 of the container, its daemons as its children.
pid1=$(descendants "$container" | while read -r p; do
    grep -q '^NSpid:.*[[:space:]]1$' "/proc/$p/status" 2>/dev/null && echo "$p"; done | head -n 1)
[ -n "$pid1" ] && case "$(readlink "/proc/$pid1/exe")" in */httpd) true ;; *) false ;; esac ||
    fail "httpd is not PID 1 of the container"
daemons=$(cat /proc/"$pid1"/task/*/children | tr ' ' '\n' | while read -r p; do
    [ -n "$p" ] && readlink "/proc/$p/exe" | grep -q node && echo "$p"; done | wc -l)
say "  httpd is PID 1 ($(readlink "/proc/$pid1/exe")), $daemons daemon process(es) (node) beside its children"
for n in 1 2 3 4 5; do ip netns exec "$ns" curl -sS --max-time 5 -o /dev/null http://127.0.0.1/; done
# The image's ErrorLog /proc/self/fd/2: the container's stderr has the Apache parent's lines and the
# daemons' own, each one record with a level, and nothing of ours at warn or above (run with
# `httpd-foreground -c "LogLevel info"`, as `docker run IMAGE httpd-foreground -c ...` would).
grep -q '\[wsgi:info\] \[pid 1:tid 1\] WSGI01102: started daemon process' "$work/container.stderr" ||
    fail "the container's stderr (ErrorLog /proc/self/fd/2) has no line of the Apache parent about its daemons"
grep -q '\[wsgi:info\] .*WSGI02003: Starting process' "$work/container.stderr" ||
    fail "the container's stderr (ErrorLog /proc/self/fd/2) has no line from a daemon"
if grep '\[wsgi:\(emerg\|alert\|crit\|error\|warn\)\]' "$work/container.stderr" >&2; then
    fail "mod_wsgi logged the trouble above"
fi
grep -q '"GET / HTTP/1.1" 200' "$work/container.stdout" ||
    fail "the access log (CustomLog /proc/self/fd/1) on the container's stdout has no request"

# docker stop: the STOPSIGNAL, then SIGKILL after 10 s.
t0=$(date +%s%N)
kill -WINCH "$pid1"
i=0
while kill -0 "$container" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$container" 2>/dev/null && fail "httpd did not exit within 10 s of SIGWINCH (docker stop would SIGKILL it)"
ms=$((($(date +%s%N) - t0) / 1000000))
container= pid1=
grep -q 'caught SIGWINCH, shutting down gracefully' "$work/container.stderr" || fail "no graceful-stop line in the error log"
grep -q 'WSGI01600: graceful stop: 2 daemon process(es) serve on' "$work/container.stderr" || fail "the daemons were not told of the graceful stop"
# Apache's own words before its error log is open (AH00558: no ServerName) aside, one record per line.
if sed '/^AH0055[78]: /d' "$work/container.stderr" | grep -v '^\[[A-Z][a-z][a-z] [A-Z][a-z][a-z] [0-9][0-9] [0-9:.]* [0-9]*\] \[[a-z_0-9]*:[a-z0-9]*\] \[pid [0-9]*' >&2; then
    fail "lines above on the container's stderr are not one record each with a level"
fi
grep -q 'WSGI01108\|WSGI01112' "$work/container.stderr" && fail "a daemon had to be killed at the stop"
say "  SIGWINCH: httpd and its daemons exited in $ms ms"
say "  container stderr (ErrorLog /proc/self/fd/2), first lines:"
head -n 6 "$work/container.stderr" | sed 's/^/    /'
say "  container stdout (CustomLog /proc/self/fd/1), first line:"
head -n 1 "$work/container.stdout" | sed 's/^/    /'

step done
say "PASSED in $(($(date +%s) - t_all)) s: httpd $upstream built as the official image does, in a debootstrapped Debian 12, serves the sample app through mod_wsgi"
