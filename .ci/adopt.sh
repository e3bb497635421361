#!/usr/bin/env bash
# .ci/adopt.sh: proves the three ways to adopt shmheap on this machine, as an
# adopter would take them. Run from the repository root (a git checkout with
# the work committed); .ci/run calls it.
#
# 1. subproject: builds test/consumer, a Meson project whose only link to
#    shmheap is subprojects/shmheap.wrap and dependency('shmheap') with
#    distro_install=false, and runs its cross-process program; its install
#    holds the program and nothing of shmheap. The wrap clones this
#    repository's committed HEAD, so what is tested is what a user would
#    fetch.
# 2. install: `meson install` into a temporary prefix; checks the header, the
#    shared library (soname libshmheap.so.MAJOR.MINOR before 1.0), the static
#    library, the pkg-config file, the tool and the man pages are there;
#    builds and runs a consumer with `pkg-config --cflags --libs shmheap` and
#    a fully static one with `--static`; compiles and runs the example of
#    shmheap(3) as printed; runs the installed tool with no LD_LIBRARY_PATH;
#    imports the installed Python binding (PYTHONPATH at the installed
#    purelib directory, nothing else) and runs its tests, the two-process one
#    among them, and the README's Python example, against the installed
#    library.
# 3. release: `meson dist` makes the tarball; it holds the sources, docs and
#    tests and no CI plumbing; it is unpacked, configured, built and its test
#    suite run (meson dist's own check does the same; doing it here shows
#    which test failed and keeps the benchmarks out).
# 4. readme: the README's "Ways in" commands, extracted from the code blocks
#    between its `<!-- BEGIN adopt: NAME -->` markers and run as written in a
#    scratch consumer project: the wrap-file for the tarball of step 3 (taken
#    from subprojects/packagecache, no download) and the wrap-git, pointed at
#    a clone of this repository whose main is the committed HEAD.
#
# Every sub-check counts; the last line is `STEP adopt: N passed, M failed`.
# A failed sub-check shows the tail of its log; ADOPT_VERBOSE=1 shows all.
# Exits nonzero when any sub-check failed. Nothing outside a temporary
# directory is left behind, except test/consumer/subprojects/shmheap (the
# wrap's clone, ignored by git, removed before each run).
set -uo pipefail

REPO=$(pwd)
if [ ! -f "$REPO/meson.build" ] || [ ! -d "$REPO/test/consumer" ]; then
  echo "adopt: run me from the shmheap repository root" >&2
  exit 2
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shmheap-adopt.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
FAILED_NAMES=()
START=$SECONDS

# Tools the checks need; a CI machine may lack some (the script installs
# them when it can, as root with apt-get).
need_pkgs=()
command -v git >/dev/null || need_pkgs+=(git)
command -v readelf >/dev/null || need_pkgs+=(binutils)
command -v groff >/dev/null || need_pkgs+=(groff-base)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v python3 >/dev/null || need_pkgs+=(python3)
if [ ${#need_pkgs[@]} -gt 0 ] && [ "$(id -u)" = 0 ] &&
  command -v apt-get >/dev/null; then
  echo "adopt: installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" \
    >"$TMP/apt.log" 2>&1 || tail -n 20 "$TMP/apt.log"
fi

# refute CMD...: succeeds when CMD fails. (`! CMD` would not stop a function
# under errexit.)
refute() {
  if "$@"; then
    return 1
  fi
  return 0
}

# readme_block NAME N: the Nth fenced code block (0: all of them, in order)
# between `<!-- BEGIN adopt: NAME -->` and `<!-- END adopt: NAME -->` in
# README.md, as written; fails when there is none.
readme_block() {
  awk -v m="$1" -v n="$2" '
    $0 == "<!-- BEGIN adopt: " m " -->" { inside = 1; next }
    $0 == "<!-- END adopt: " m " -->" { inside = 0; next }
    inside && /^```/ { if (fence) fence = 0; else { fence = 1; k++ }; next }
    inside && fence && (n == 0 || k == n) { print; found = 1 }
    END { exit found ? 0 : 1 }
  ' "$REPO/README.md"
}

# output_has PATTERN CMD...: runs CMD, shows its output and succeeds when a
# line matches PATTERN (grep -E). The output goes through a file: `CMD | grep
# -q` would fail under pipefail when grep stops reading early.
output_has() {
  local pattern=$1 out="$TMP/output_has.out"
  shift
  "$@" >"$out"
  cat "$out"
  grep -Eq -- "$pattern" "$out"
}

# check NAME CMD...: runs CMD (with errexit: the first failing command fails
# the check) and its output in a log; counts it; shows the log's tail when it
# fails; LAST_RC is its status. Never call check in an `if` condition or an
# && list: bash ignores errexit in everything such a call runs.
check() {
  local name=$1 log rc
  shift
  log="$TMP/log.$((PASSED + FAILED))"
  (
    set -euo pipefail
    "$@"
  ) >"$log" 2>&1 </dev/null
  rc=$?
  if [ "$rc" -eq 0 ]; then
    PASSED=$((PASSED + 1))
    echo "ok   $name"
    if [ -n "${ADOPT_VERBOSE:-}" ]; then sed 's/^/     | /' "$log"; fi
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    echo "FAIL $name"
    tail -n 40 "$log" | sed 's/^/     | /'
  fi
  LAST_RC=$rc
}

# skip WHY NAME...: says which checks cannot run because an earlier one
# failed (that failure is already counted; these are not).
skip() {
  local why=$1 name
  shift
  for name in "$@"; do
    echo "skip $name ($why)"
  done
}

# ------------------------------------------------------------- subproject

CONSUMER_BUILD="$TMP/consumer-build"

consumer_setup() {
  rm -rf "$REPO/test/consumer/subprojects/shmheap"
  # --force-fallback-for: use the wrap even where shmheap is installed.
  meson setup "$CONSUMER_BUILD" "$REPO/test/consumer" \
    --force-fallback-for=shmheap
  # The dependency came from the wrap's subproject, a clone of this repo.
  grep -q "Executing subproject shmheap" "$CONSUMER_BUILD/meson-logs/meson-log.txt"
  git -C "$REPO/test/consumer/subprojects/shmheap" log -1 --oneline
  [ "$(git -C "$REPO/test/consumer/subprojects/shmheap" rev-parse HEAD)" = \
    "$(git -C "$REPO" rev-parse HEAD)" ]
}

consumer_build() {
  ninja -C "$CONSUMER_BUILD"
  ls "$CONSUMER_BUILD"/subprojects/shmheap/lib/libshmheap.*
}

consumer_run() {
  meson test -C "$CONSUMER_BUILD" --print-errorlogs
  "$CONSUMER_BUILD/consumer" | tee "$TMP/consumer.out"
  grep -q '^consumer: ok: child [0-9]* read "hello from [0-9]*"' "$TMP/consumer.out"
}

# distro_install=false and default_library=static: shmheap is linked in and
# installs nothing.
consumer_install() {
  readelf -d "$CONSUMER_BUILD/consumer" >"$TMP/consumer.dyn"
  refute grep -q 'libshmheap' "$TMP/consumer.dyn"
  DESTDIR="$TMP/consumer-dest" meson install -C "$CONSUMER_BUILD" --quiet
  (cd "$TMP/consumer-dest" && find . -type f -o -type l) | sort | tee "$TMP/consumer.inst"
  [ "$(wc -l <"$TMP/consumer.inst")" = 1 ]
  grep -q '/bin/consumer$' "$TMP/consumer.inst"
}

echo "== subproject (test/consumer through its wrap)"
check "subproject: configure test/consumer, shmheap from the wrap" consumer_setup
if [ "$LAST_RC" = 0 ]; then
  check "subproject: build" consumer_build
fi
if [ "$LAST_RC" = 0 ]; then
  check "subproject: run the cross-process consumer" consumer_run
  check "subproject: distro_install=false installs the consumer only, shmheap linked in" consumer_install
else
  skip "no consumer build" "subproject: build, run or install"
fi

# ---------------------------------------------------------------- install

PREFIX="$TMP/prefix"
INSTALL_BUILD="$TMP/install-build"

install_build() {
  meson setup "$INSTALL_BUILD" "$REPO" --prefix="$PREFIX" \
    -Dtool=enabled -Dtests=disabled -Dbenchmarks=disabled -Dexamples=disabled
  ninja -C "$INSTALL_BUILD"
  meson install -C "$INSTALL_BUILD" --quiet
  find "$PREFIX" -type f -o -type l | sort
}

echo "== install (meson install into $PREFIX)"
check "install: configure, build, meson install" install_build
INSTALLED=$LAST_RC

# The library directory, wherever this platform's default libdir puts it.
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libshmheap.so' | head -n 1)" 2>/dev/null)
[ -n "$LIBDIR" ] && [ "$LIBDIR" != . ] || LIBDIR="$PREFIX/lib"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
# The release and the soname it implies: MAJOR.MINOR before 1.0, MAJOR after.
VERSION=$(sed -n "s/^ *version: '\([0-9.]*\)',\$/\1/p" "$REPO/meson.build" | head -n 1)
case $VERSION in
  0.*) SONAME=libshmheap.so.${VERSION%.*} ;;
  *) SONAME=libshmheap.so.${VERSION%%.*} ;;
esac
# Where the Python binding went (Python's purelib directory under PREFIX).
PURELIB=$(dirname "$(dirname "$(find "$PREFIX" -path '*/shmheap/__init__.py' | head -n 1)")" 2>/dev/null)

installed_header() {
  cmp "$PREFIX/include/shmheap.h" "$REPO/include/shmheap.h"
}
installed_shared() {
  local real
  real=$(readlink -f "$LIBDIR/$SONAME")
  test -f "$real"
  [ "$(basename "$real")" = "libshmheap.so.$VERSION" ]
  output_has "Library soname: \\[${SONAME//./\\.}\\]" readelf -d "$real"
  # the development symlink, for -lshmheap
  test "$(readlink -f "$LIBDIR/libshmheap.so")" = "$real"
  # the library exports the API and nothing internal
  readelf --dyn-syms -W "$real" | awk '$5 == "GLOBAL" && $7 != "UND" {print $8}' |
    sort >"$TMP/exports"
  cat "$TMP/exports"
  refute grep -v '^shmheap_' "$TMP/exports"
  grep -o 'shmheap_[a-z_]*(' "$REPO/include/shmheap.h" | tr -d '(' | sort -u >"$TMP/api"
  comm -13 "$TMP/exports" "$TMP/api" | tee "$TMP/missing"
  [ ! -s "$TMP/missing" ]
}
installed_static() {
  test -f "$LIBDIR/libshmheap.a"
  output_has ' T shmheap_alloc$' nm "$LIBDIR/libshmheap.a"
}
installed_pc() {
  test -f "$LIBDIR/pkgconfig/shmheap.pc"
  cat "$LIBDIR/pkgconfig/shmheap.pc"
  test "$(pkg-config --modversion shmheap)" = \
    "$(meson introspect --projectinfo "$INSTALL_BUILD" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
}
installed_tool() {
  test -x "$PREFIX/bin/shmheap"
  local name="/shmheap-adopt-$$"
  # It finds its library by itself (rpath), as an installed program must.
  unset LD_LIBRARY_PATH
  "$PREFIX/bin/shmheap" --version
  "$PREFIX/bin/shmheap" create "$name" 64K
  output_has '^size: +65536 ' "$PREFIX/bin/shmheap" info "$name"
  "$PREFIX/bin/shmheap" check "$name"
  "$PREFIX/bin/shmheap" destroy "$name"
  refute "$PREFIX/bin/shmheap" info "$name" 2>"$TMP/tool.err"
  grep -q '^shmheap: info: .*: no such heap' "$TMP/tool.err"
}
installed_man() {
  local p
  for p in man1/shmheap.1 man3/shmheap.3 man3/shmheap_alloc.3 \
    man3/shmheap_walk.3; do
    test -f "$PREFIX/share/man/$p"
  done
  # they render, and groff has nothing to warn about
  for p in man1/shmheap.1 man3/shmheap.3; do
    groff -man -ww -z -Tutf8 "$PREFIX/share/man/$p" 2>"$TMP/groff.err"
    cat "$TMP/groff.err"
    [ ! -s "$TMP/groff.err" ]
  done
  # `man shmheap_alloc` lands on shmheap(3)
  grep -qx '.so man3/shmheap.3' "$PREFIX/share/man/man3/shmheap_alloc.3"
  if command -v man >/dev/null; then
    export MANPATH="$PREFIX/share/man" MANWIDTH=80
    # the NAME line wraps where it likes: match across line breaks
    man -P cat shmheap_alloc | tr -s ' \n' '  ' >"$TMP/man3.txt"
    grep -q 'a first-fit heap in POSIX shared memory' "$TMP/man3.txt"
    output_has 'create, inspect, check, draw and remove shmheap heaps' \
      man -P cat 1 shmheap
  fi
}


pc_shared() {
  # shellcheck disable=SC2046 # pkg-config output is meant to be split
  cc -o "$TMP/consumer-shared" "$REPO/test/consumer/consumer.c" \
    $(pkg-config --cflags --libs shmheap)
  # it really uses the installed shared library
  LD_LIBRARY_PATH="$LIBDIR" output_has \
    "${SONAME//./\\.} => $LIBDIR/${SONAME//./\\.}" ldd "$TMP/consumer-shared"
  LD_LIBRARY_PATH="$LIBDIR" "$TMP/consumer-shared" | grep '^consumer: ok'
}
pc_static() {
  # shellcheck disable=SC2046
  cc -static -o "$TMP/consumer-static" "$REPO/test/consumer/consumer.c" \
    $(pkg-config --static --cflags --libs shmheap)
  # no dynamic section at all: libshmheap.a and libc were linked in
  readelf -d "$TMP/consumer-static" >"$TMP/static.dyn" 2>&1 || true
  refute grep -q NEEDED "$TMP/static.dyn"
  "$TMP/consumer-static" | grep '^consumer: ok'
}
man_example() {
  # The EXAMPLES program of the installed shmheap(3), from its roff source
  # (\- is a minus, \e a backslash, \(aq a quote).
  awk '/^\.SH EXAMPLES/{f=1} f&&/^\.EX/{g=1; next} g&&/^\.EE/{exit} g' \
    "$PREFIX/share/man/man3/shmheap.3" |
    sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e "s/\\\\(aq/'/g" >"$TMP/example.c"
  cat "$TMP/example.c"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -o "$TMP/example" "$TMP/example.c" \
    $(pkg-config --cflags --libs shmheap)
  LD_LIBRARY_PATH="$LIBDIR" "$TMP/example" >"$TMP/example.out"
  printf 'hello\nworld\n0 blocks in use\n' | diff - "$TMP/example.out"
}

# The installed binding, with PYTHONPATH at the purelib directory and no
# LD_LIBRARY_PATH: it loads the library from the path recorded at install.
py_import() {
  test -n "$PURELIB" && test -f "$PURELIB/shmheap/_libpath.py"
  cat "$PURELIB/shmheap/_libpath.py"
  unset LD_LIBRARY_PATH SHMHEAP_LIBRARY
  cd "$TMP"
  PYTHONPATH="$PURELIB" python3 -c 'import shmheap; print(shmheap.__version__)' \
    >"$TMP/py.version"
  cat "$TMP/py.version"
  [ "$(cat "$TMP/py.version")" = "$VERSION" ]
  # the installed library, not a build tree's
  PYTHONPATH="$PURELIB" python3 -c 'import shmheap; print(shmheap._lib._name)' \
    >"$TMP/py.lib"
  cat "$TMP/py.lib"
  [ "$(cat "$TMP/py.lib")" = "$LIBDIR/$SONAME" ]
}
py_tests() {
  unset LD_LIBRARY_PATH SHMHEAP_LIBRARY
  cd "$TMP"
  PYTHONPATH="$PURELIB" python3 "$REPO/python/tests/test_shmheap.py" --tap |
    tee "$TMP/py.tap"
  grep -q '^ok [0-9]* /python/procs/share-by-handle$' "$TMP/py.tap"
  refute grep -q '^not ok' "$TMP/py.tap"
}
py_readme() {
  unset LD_LIBRARY_PATH SHMHEAP_LIBRARY
  mkdir -p "$TMP/py-readme"
  cd "$TMP/py-readme"
  readme_block python 1 >main.py
  readme_block python 2 >reader.py
  cat main.py reader.py
  [ ! -e /dev/shm/jobs ] || {
    echo "/dev/shm/jobs exists: the README's example would not create it"
    return 1
  }
  PYTHONPATH="$PURELIB" python3 main.py | tee out
  printf "b'HELLO'\n0\n" | diff - out
}

if [ "$INSTALLED" = 0 ]; then
  check "install: header include/shmheap.h" installed_header
  check "install: shared library, soname $SONAME, exports the API only" installed_shared
  check "install: static library libshmheap.a" installed_static
  check "install: pkg-config file shmheap.pc" installed_pc
  check "install: the shmheap tool runs" installed_tool
  check "install: man pages shmheap(1), shmheap(3) and its function links" installed_man
  check "install: consumer built with pkg-config --cflags --libs runs" pc_shared
  check "install: static consumer built with pkg-config --static runs" pc_static
  check "install: the example of shmheap(3) compiles and runs" man_example
  check "install: python3 -c 'import shmheap' with PYTHONPATH at purelib" py_import
  check "install: the Python tests (two processes by handle) on the install" py_tests
  check "install: the README's Python example runs" py_readme
else
  skip "nothing installed" "install: files, pkg-config consumers, man example"
fi

# ---------------------------------------------------------------- release

DIST_BUILD="$TMP/dist-build"
UNPACK="$TMP/unpack"

make_dist() {
  meson setup "$DIST_BUILD" "$REPO" -Dbenchmarks=disabled
  # --allow-dirty: a developer's tree may have uncommitted work; the tarball
  # is always the committed HEAD. The tests run below, on the unpacked tree.
  meson dist -C "$DIST_BUILD" --no-tests --allow-dirty --formats xztar
  ls -l "$DIST_BUILD"/meson-dist/
  (cd "$DIST_BUILD/meson-dist" && sha256sum -c ./*.sha256sum)
}
dist_contents() {
  local tarball
  tarball=$(ls "$DIST_BUILD"/meson-dist/shmheap-*.tar.xz)
  tar -tJf "$tarball" >"$TMP/dist.list"
  local f
  for f in meson.build meson_options.txt include/shmheap.h lib/meson.build \
    tools/main.c doc/shmheap.3 doc/shmheap.1 doc/VERSIONING.md \
    test/meson.build test/consumer/meson.build subprojects/shmheap.wrap \
    python/meson.build python/shmheap/__init__.py python/tests/test_shmheap.py \
    README.md NEWS LICENSE; do
    grep -qx "shmheap-[0-9.]*/$f" "$TMP/dist.list" || {
      echo "missing from the tarball: $f"
      return 1
    }
  done
  # nothing from a build directory or a wrap's clone
  refute grep -E '^[^/]*/(build[^/]*|test/consumer/subprojects/shmheap)/' \
    "$TMP/dist.list"
  # no CI plumbing or editor settings
  refute grep -E '^[^/]*/(\.ci/|\.clang-format$|\.gitignore$)' \
    "$TMP/dist.list"
  mkdir -p "$UNPACK"
  tar -xJf "$tarball" -C "$UNPACK"
}
dist_build_test() {
  local src
  src=$(echo "$UNPACK"/shmheap-*)
  meson setup "$TMP/unpack-build" "$src" -Dbenchmarks=disabled -Dtests=enabled
  ninja -C "$TMP/unpack-build"
  meson test -C "$TMP/unpack-build" --print-errorlogs
  # it ran tests, and none failed
  python3 - "$TMP/unpack-build/meson-logs/testlog.json" <<'EOF'
import json, sys
results = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [r["name"] for r in results if r["result"] not in ("OK", "SKIP", "EXPECTEDFAIL")]
print(f"{len(results)} tests, failed: {bad}")
sys.exit(1 if bad or not results else 0)
EOF
}

echo "== release (meson dist)"
check "release: meson dist makes a tarball" make_dist
if [ "$LAST_RC" = 0 ]; then
  check "release: the tarball holds the sources and nothing built" dist_contents
fi
if [ "$LAST_RC" = 0 ]; then
  check "release: the unpacked tarball builds and passes its tests" dist_build_test
else
  skip "no tarball" "release: contents, build and tests of the tarball"
fi

# ----------------------------------------------------------------- readme

# readme_project DIR: a clean consumer project as the README's meson.build
# block has it, with test/consumer's two-process program as app.c.
readme_project() {
  mkdir -p "$1"
  readme_block meson.build 0 >"$1/meson.build"
  cp "$REPO/test/consumer/consumer.c" "$1/app.c"
  cat "$1/meson.build"
}

# readme_run DIR NAME: runs the README's NAME block in DIR as written, with
# no installed shmheap in sight (so the wrap is what provides it), then the
# program it built.
readme_run() {
  local dir=$1 name=$2
  readme_block "$name" 0 >"$TMP/readme-$name.sh"
  cat "$TMP/readme-$name.sh"
  (
    cd "$dir"
    unset PKG_CONFIG_PATH LD_LIBRARY_PATH
    bash -euo pipefail "$TMP/readme-$name.sh"
  )
  grep -q "Executing subproject shmheap" "$dir/build/meson-logs/meson-log.txt"
  "$dir/build/app" | tee "$TMP/readme-$name.out"
  grep -q '^consumer: ok' "$TMP/readme-$name.out"
}

readme_wrap_file() {
  local dir="$TMP/readme-wrap-file"
  readme_project "$dir"
  SHMHEAP_DIST="$DIST_BUILD/meson-dist" readme_run "$dir" wrap-file
  cat "$dir/subprojects/shmheap.wrap"
  # the tarball came from the package cache, unpacked: nothing downloaded
  grep -q "Using shmheap source from cache" "$dir/build/meson-logs/meson-log.txt"
  test -f "$dir/subprojects/shmheap-$VERSION/meson.build"
  refute test -d "$dir/subprojects/shmheap-$VERSION/.ci"
}

readme_wrap_git() {
  local dir="$TMP/readme-wrap-git" clone="$TMP/shmheap-clone"
  readme_project "$dir"
  # "where you get shmheap": a local clone whose main is the committed HEAD
  git clone -q "$REPO" "$clone"
  git -C "$clone" checkout -q -B main "$(git -C "$REPO" rev-parse HEAD)"
  SHMHEAP_GIT="$clone" readme_run "$dir" wrap-git
  cat "$dir/subprojects/shmheap.wrap"
  [ "$(git -C "$dir/subprojects/shmheap" rev-parse HEAD)" = \
    "$(git -C "$REPO" rev-parse HEAD)" ]
}

echo "== readme (the Ways in commands, as written)"
if [ -f "$DIST_BUILD/meson-dist/shmheap-$VERSION.tar.xz" ]; then
  check "readme: wrap-file for the release tarball, from the package cache" readme_wrap_file
else
  skip "no tarball" "readme: wrap-file"
fi
check "readme: wrap-git at a branch of a local clone" readme_wrap_git

# ---------------------------------------------------------------- summary

rm -rf "$REPO/test/consumer/subprojects/shmheap"
echo "adopt: $((SECONDS - START)) s"
if [ ${#FAILED_NAMES[@]} -gt 0 ]; then
  printf 'adopt: failed: %s\n' "${FAILED_NAMES[@]}"
fi
echo "STEP adopt: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
