# Shared by the example scripts: everything they write goes under one temp dir.
OUT="${PODIUM_EXAMPLES_OUT:-${TMPDIR:-/tmp}/podium-examples}"
mkdir -p "$OUT"
say() { printf '[%s] %s\n' "${PODIUM_TASK:-script}" "$*"; }
