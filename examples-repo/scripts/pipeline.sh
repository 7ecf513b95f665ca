#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
case "$1" in
  extract) printf 'eu 10\nus 20\napac 30\n' > "$OUT/$DATASET.raw"; say "extracted $DATASET" ;;
  transform) grep "^$REGION " "$OUT/$DATASET.raw" > "$OUT/$DATASET.$REGION"; say "transformed $REGION" ;;
  merge) cat "$OUT/$DATASET".eu "$OUT/$DATASET".us "$OUT/$DATASET".apac > "$OUT/$DATASET.report"
         say "merged $(wc -l < "$OUT/$DATASET.report") regions" ;;
  *) echo "unknown step $1" >&2; exit 2 ;;
esac
