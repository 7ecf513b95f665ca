#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
rm -f "$OUT/web-$VERSION.tar"
say "removed artifact web-$VERSION.tar"
