#!/usr/bin/env bash
# scripts/test.sh — the project's test command (README). Run as root on Debian 12.
#
# Installs the Debian packages it needs when missing, builds the workspace, starts its own
# pcscd (vpcd reader, private network namespace) and a provisioned virtual PIV card,
# runs the Rust unit and integration tests against the built module, stops them by PID,
# then runs the shell suites (each starts and stops its own pcscd and cards).
# Ends with one line "total: N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/pcsc-env.sh

need=(pkg-config libpcsclite-dev libsqlite3-dev softhsm2 gcc libc6-dev)
miss=(); for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || miss+=("$p"); done
if [ ${#miss[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${miss[@]}" >/dev/null || exit 1
fi
pcsc_env_install || exit 1

echo "== build"
cargo build --workspace --all-targets || exit 1

W=$(mktemp -d /tmp/dcred-test.XXXXXX)
cleanup() { pcsc_env_stop; rm -rf "$W"; }
trap cleanup EXIT
total_pass=0 total_fail=0
count_cargo() { # sum the "test result: ... N passed; M failed" lines of a cargo log
  local p f
  read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { print p + 0, f + 0 }' "$1")
  total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
}
count_plain() { # the last "N passed, M failed" line of a shell suite
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -z "$line" ]; then total_fail=$((total_fail + 1)); return; fi
  total_pass=$((total_pass + $(cut -d' ' -f1 <<<"$line")))
  total_fail=$((total_fail + $(cut -d' ' -f3 <<<"$line")))
}
status=0

echo "== Rust tests (unit + integration through the C ABI, virtual card in reader 0)"
bash scripts/make-test-pki.sh "$W/pki" >/dev/null || exit 1
args=(); for s in 9a 9c 9d 9e 82 83; do args+=(--slot "$s" --key "$W/pki/$s.key.pem" --cert "$W/pki/$s.cert.pem"); done
"$PIV_SIM" provision --state "$W/card.json" "${args[@]}" >/dev/null || exit 1
pcsc_env_start "$W/env" || exit 1
pcsc_card_start 0 "$W/card.json" "$W/count0" || exit 1
export DCRED_DATA_DIR="$W/no-credentials" DCRED_TEST_ENV=1 DCRED_TEST_PKI="$W/pki" DCRED_TEST_CARD_STATE="$W/card.json" \
  DCRED_TEST_COUNT_FILE="$W/count0" PCSC_ENV_DIR
cargo test --workspace -- --include-ignored --test-threads=1 2>&1 | tee "$W/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
count_cargo "$W/cargo.log"
pcsc_env_stop
unset DCRED_TEST_ENV DCRED_DATA_DIR

for suite in tests/shell/piv-sim-interop.sh tests/shell/module-pkcs11-tool.sh tests/shell/derived-enroll.sh; do
  echo "== $suite"
  NO_BUILD=1 bash "$suite" 2>&1 | tee "$W/suite.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  count_plain "$W/suite.log"
done

echo "total: $total_pass passed, $total_fail failed"
[ "$status" -eq 0 ] && [ "$total_fail" -eq 0 ]
