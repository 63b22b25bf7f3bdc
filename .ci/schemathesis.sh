#!/usr/bin/env bash
# Checks the OpenAPI document against the server, as an outside tester would:
# schemathesis (pinned) with every check and the stateful phase, a fixed seed, against
# the built debug binary on a fresh SQLite database. Exits non-zero on any failure.
# Usage: .ci/schemathesis.sh   (after `cargo build`); see docs/api-conformance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMATHESIS_VERSION=4.32.5
target="${CARGO_TARGET_DIR:-target}"
venv="$target/schemathesis-venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Limits a fuzzer trips by design are lifted; everything else is the default.
"$target/debug/devid" serve --database "$work/devid.db" --listen 127.0.0.1:0 \
  --rate-limit 0 --account-rate-limit 0 --auth-failures-per-minute 0 \
  --allow-private-webhooks > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "devid listening" "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
address="$(grep -o 'address=[0-9.:]*' "$work/serve.log" | head -1 | cut -d= -f2)"
if [ -z "$address" ]; then
  echo "the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1
fi
# The first admin key is the account's only one: the stateful phase cannot revoke it (a
# key cannot revoke itself, nor the last admin key), so the run cannot lock itself out.
key="$(grep -o 'pat\.[A-Za-z0-9._-]*' "$work/devid.db.first-admin-key" | head -1)"

"$venv/bin/schemathesis" --config-file .ci/schemathesis.toml run "http://$address/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful --seed 42 --max-examples 10 \
  --max-time 180 --workers 1 --header "x-api-key: $key"
