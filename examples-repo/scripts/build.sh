#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
say "building web $VERSION"
printf 'web %s\n' "$VERSION" > "$OUT/web-$VERSION.tar"
say "artifact at $OUT/web-$VERSION.tar"
