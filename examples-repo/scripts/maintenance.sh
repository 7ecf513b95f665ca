#!/bin/sh
set -eu
. "$(dirname "$0")/lib.sh"
case "$1" in
  vacuum) date -u +%FT%TZ > "$OUT/vacuumed-at"; say "database vacuumed" ;;
  rotate) find "$OUT" -name '*.log' -mtime +"$KEEP_DAYS" -delete; say "logs older than $KEEP_DAYS days rotated" ;;
  report) say "maintenance done: $(cat "$OUT/vacuumed-at")" ;;
  *) echo "unknown step $1" >&2; exit 2 ;;
esac
