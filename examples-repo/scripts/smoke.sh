#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
grep -q "$VERSION" "$OUT/live-$ENVIRONMENT.tar"
say "smoke test passed"
