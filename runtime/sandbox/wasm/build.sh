#!/bin/sh
# Rebuilds sandbox.wasm: QuickJS-NG (sources from the PyPI `quickjs-ng` sdist) as a WASI reactor.
#  * --stack-first, 1 MiB shadow stack: a stack overflow traps instead of corrupting the heap;
#  * one synchronous host import, env.host_call;
#  * no qjs-libc: the guest has no std/os modules.
# The output is committed so that `pip install` needs no C toolchain; CI rebuilds it and checks
# that the committed file is what this script produces from these sources.
# Needs Debian's clang-16, lld-16, wasi-libc and libclang-rt-16-dev-wasm32, and pip.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-"$HERE/sandbox.wasm"}
QV=0.17.0.2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m pip download --no-deps --no-binary :all: -q -d "$WORK" "quickjs-ng==$QV" 2>&1 | { grep -v "^WARNING: Location" || true; }
tar xzf "$WORK/quickjs_ng-$QV.tar.gz" -C "$WORK"
Q="$WORK/quickjs_ng-$QV/upstream-quickjs"
clang-16 --target=wasm32-wasi --sysroot=/usr -O3 -DNDEBUG -mexec-model=reactor \
  -ffile-prefix-map="$Q"=quickjs -ffile-prefix-map="$HERE"=sandbox \
  -D_GNU_SOURCE -DCONFIG_VERSION="\"${QV%.*}\"" -I"$Q" \
  -Wl,--stack-first -Wl,-z,stack-size=1048576 -Wl,--export=malloc -Wl,--export=free \
  -o "$OUT" "$HERE/sandbox.c" "$Q/quickjs.c" "$Q/libregexp.c" "$Q/libunicode.c" "$Q/dtoa.c" -lm
echo "built $OUT ($(wc -c < "$OUT") bytes)"
