#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
rm -f "$OUT/live-$ENVIRONMENT.tar"
say "took web $VERSION out of $ENVIRONMENT"
