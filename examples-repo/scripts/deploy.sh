#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
cp "$OUT/web-$VERSION.tar" "$OUT/live-$ENVIRONMENT.tar"
say "web $VERSION is live in $ENVIRONMENT"
