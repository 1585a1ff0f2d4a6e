#!/usr/bin/env bash
# tests/shell/piv-sim-interop.sh — independent PIV software accepts the virtual card.
#
# Real stack: pcscd + vsmartcard's vpcd reader (scripts/pcsc-env.sh), piv-sim provisioned
# with a throw-away PKI (scripts/make-test-pki.sh). Clients: OpenSC (opensc-tool and its
# PKCS#11 module through pkcs11-tool) and yubico-piv-tool. openssl checks every signature,
# decryption and key agreement against the provisioned certificates.
#
# Usage: tests/shell/piv-sim-interop.sh   (root; installs missing Debian packages; builds
# piv-sim with cargo unless PIV_SIM names a binary to use). KEEP=1 keeps the work directory.
# Prints PASS/FAIL/INFO lines and ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GIVEN_PIV_SIM=${PIV_SIM:-}
# shellcheck source=scripts/pcsc-env.sh
. "$ROOT/scripts/pcsc-env.sh"

pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
info() { echo "INFO $1"; }
# check NAME CMD...: PASS when CMD succeeds; its output goes to $W/out.log.
check() {
  local name=$1
  shift
  echo "== $name: $*" >>"$W/out.log"
  if "$@" >>"$W/out.log" 2>&1; then ok "$name"; else bad "$name"; fi
}
# has NAME PATTERN CMD...: PASS when CMD's output (stdout+stderr) matches the ERE PATTERN.
has() {
  local name=$1 pattern=$2 out
  shift 2
  out=$("$@" 2>&1)
  printf '== %s: %s\n%s\n' "$name" "$*" "$out" >>"$W/out.log"
  if grep -Eq -- "$pattern" <<<"$out"; then ok "$name"; else bad "$name (no /$pattern/)"; fi
}

[ "$(id -u)" = 0 ] || { echo "FAIL must run as root (pcscd, unshare -n)"; echo "0 passed, 1 failed"; exit 1; }
pcsc_env_install || { echo "FAIL installing packages"; echo "0 passed, 1 failed"; exit 1; }

W=$(mktemp -d /tmp/piv-sim-interop.XXXXXX)
# The summary is printed last, on every exit path; any FAIL makes the exit status 1.
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  pcsc_env_stop
  if [ "${KEEP:-0}" = 1 ] || [ "$fail" -ne 0 ]; then
    echo "INFO work directory kept: $W"
  else
    rm -rf "$W"
  fi
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ] || exit 1
}
trap cleanup EXIT

if [ -z "$GIVEN_PIV_SIM" ]; then
  (cd "$ROOT" && cargo build -q -p piv-sim) || { bad "cargo build -p piv-sim"; exit 1; }
fi
export HOME=$W/home # OpenSC's file cache and config stay inside the test (after cargo/rustup)
mkdir -p "$HOME"
[ -x "$PIV_SIM" ] || { bad "piv-sim binary at $PIV_SIM"; exit 1; }
MODULE=
for m in /usr/lib/*/opensc-pkcs11.so; do [ -f "$m" ] && MODULE=$m && break; done
[ -n "$MODULE" ] || { bad "opensc-pkcs11.so not found"; exit 1; }
P11=(pkcs11-tool --module "$MODULE")
YK=(yubico-piv-tool -r Virtual) # the vpcd readers are "Virtual PCD 00 00" / "00 01"
PIN=123456 PUK=12345678

# --- card provisioning ---------------------------------------------------------------
PKI=$W/pki
"$ROOT/scripts/make-test-pki.sh" "$PKI" >>"$W/out.log" 2>&1 || { bad "make-test-pki.sh"; exit 1; }
prov=(provision --state "$W/card.json" --pin "$PIN" --puk "$PUK" --pin-retries 3)
for s in 9a 9c 9d 9e 82 83; do
  prov+=(--slot "$s" --key "$PKI/$s.key.pem" --cert "$PKI/$s.cert.pem")
  openssl x509 -in "$PKI/$s.cert.pem" -pubkey -noout >"$PKI/$s.pub.pem"
  openssl x509 -in "$PKI/$s.cert.pem" -outform der -out "$PKI/$s.cert.der"
done
check "piv-sim provision (6 slots, PEM PKCS#8 keys)" "$PIV_SIM" "${prov[@]}"
has "state file is mode 0600" '^600$' stat -c %a "$W/card.json"

pcsc_env_start "$W" || { bad "pcscd with the vpcd reader"; exit 1; }
ok "pcscd up with the vpcd reader (pid $PCSCD_PID)"
pcsc_card_start 0 "$W/card.json" "$W/count" || { bad "card inserted in reader 0"; exit 1; }
ok "card inserted in reader 0 (piv-sim pid ${PCSC_CARD_PIDS[0]})"
apdus() { cat "$W/count"; }

# --- OpenSC ----------------------------------------------------------------------------
has "ATR 3B 88 80 01 ... read by opensc-tool" '^3b:88:80:01:' opensc-tool -r 0 -a
has "OpenSC's driver claims it as a PIV card" 'Personal Identity Verification Card' opensc-tool -r 0 -n
has "pkcs11-tool -L shows a PIV token" 'token manufacturer : piv_II' "${P11[@]}" -L
objs=$("${P11[@]}" -O 2>&1)
echo "$objs" >"$W/objects.txt"
n=$(grep -c '^Certificate Object' <<<"$objs")
if [ "$n" = 6 ]; then ok "pkcs11-tool -O lists 6 certificates"; else bad "pkcs11-tool -O lists 6 certificates (got $n)"; fi
missing=
for s in 9a 9c 9d 9e 82 83; do grep -q "subject: *DN: CN=dcred test $s" <<<"$objs" || missing+=" $s"; done
if [ -z "$missing" ]; then ok "certificate subjects for 9a 9c 9d 9e 82 83"; else bad "certificate subjects missing:$missing"; fi
check "pkcs11-tool reads the 9a certificate byte for byte" \
  bash -c '"$@" --read-object --type cert --id 01 -o "'"$W"'/9a.read.der" && cmp "'"$W"'/9a.read.der" "'"$PKI"'/9a.cert.der"' _ "${P11[@]}"

echo "data to be signed by the virtual PIV card" >"$W/data"
openssl dgst -sha256 -binary "$W/data" >"$W/data.sha256"
before=$(apdus)
check "9a SHA256-RSA-PKCS signature verifies with openssl" bash -c '
  "$@" --login --pin '"$PIN"' --sign -m SHA256-RSA-PKCS --id 01 -i "'"$W"'/data" -o "'"$W"'/sig.9a" &&
  openssl dgst -sha256 -verify "'"$PKI"'/9a.pub.pem" -signature "'"$W"'/sig.9a" "'"$W"'/data"' _ "${P11[@]}"
info "pkcs11-tool login + RSA-2048 signature cost $(($(apdus) - before)) APDUs (OpenSC re-reads every object per process)"
# RSA-PKCS over a DigestInfo gives the same signature as SHA256-RSA-PKCS.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$W/data.sha256"; } >"$W/digestinfo"
check "9a RSA-PKCS over a DigestInfo verifies with openssl" bash -c '
  "$@" --login --pin '"$PIN"' --sign -m RSA-PKCS --id 01 -i "'"$W"'/digestinfo" -o "'"$W"'/sig.9a.raw" &&
  openssl dgst -sha256 -verify "'"$PKI"'/9a.pub.pem" -signature "'"$W"'/sig.9a.raw" "'"$W"'/data"' _ "${P11[@]}"
check "9c ECDSA-SHA256 (PIN always: context-specific login) verifies with openssl" bash -c '
  "$@" --login --pin '"$PIN"' --sign -m ECDSA-SHA256 --signature-format openssl --id 02 \
    -i "'"$W"'/data" -o "'"$W"'/sig.9c" &&
  openssl dgst -sha256 -verify "'"$PKI"'/9c.pub.pem" -signature "'"$W"'/sig.9c" "'"$W"'/data"' _ "${P11[@]}"
check "9e ECDSA over a hash verifies with openssl" bash -c '
  "$@" --login --pin '"$PIN"' --sign -m ECDSA --signature-format openssl --id 04 -i "'"$W"'/data.sha256" -o "'"$W"'/sig.9e" &&
  openssl pkeyutl -verify -pubin -inkey "'"$PKI"'/9e.pub.pem" -in "'"$W"'/data.sha256" -sigfile "'"$W"'/sig.9e"' _ "${P11[@]}"
echo "a key-management secret" >"$W/secret"
for pair in "9d 03" "82 05"; do
  read -r slot id <<<"$pair"
  set -- "$slot" "$id"
  openssl pkeyutl -encrypt -pubin -inkey "$PKI/$1.pub.pem" -in "$W/secret" -out "$W/ct.$1"
  check "$1 RSA-PKCS decryption of data openssl encrypted" bash -c '
    "$@" --login --pin '"$PIN"' --decrypt -m RSA-PKCS --id '"$2"' -i "'"$W"'/ct.'"$1"'" -o "'"$W"'/pt.'"$1"'" &&
    cmp "'"$W"'/secret" "'"$W"'/pt.'"$1"'"' _ "${P11[@]}"
done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$W/peer.key" 2>/dev/null
openssl pkey -in "$W/peer.key" -pubout -outform der -out "$W/peer.pub.der"
openssl pkeyutl -derive -inkey "$W/peer.key" -peerkey "$PKI/83.pub.pem" -out "$W/shared.openssl"
check "83 (retired, P-384) ECDH1-DERIVE matches openssl" bash -c '
  "$@" --login --pin '"$PIN"' --derive -m ECDH1-DERIVE --id 06 -i "'"$W"'/peer.pub.der" -o "'"$W"'/shared.card" &&
  cmp "'"$W"'/shared.openssl" "'"$W"'/shared.card"' _ "${P11[@]}"

# --- yubico-piv-tool ---------------------------------------------------------------------
status=$("${YK[@]}" -a status 2>&1)
echo "$status" >"$W/status.txt"
if grep -q '^CHUID:' <<<"$status" && grep -q $'^Slot 9a:' <<<"$status" &&
  grep -q 'Subject DN:.*CN=dcred test 83' <<<"$status" && grep -q $'^PIN tries left:\t3' <<<"$status"; then
  ok "yubico-piv-tool -a status (CHUID, slots 9a..83, PIN tries)"
else
  bad "yubico-piv-tool -a status"
fi
check "yubico-piv-tool -a read-certificate -s 9a is the provisioned certificate" bash -c '
  "$@" -a read-certificate -s 9a -K DER -o "'"$W"'/9a.yk.der" && cmp "'"$W"'/9a.yk.der" "'"$PKI"'/9a.cert.der"' _ "${YK[@]}"
has "yubico-piv-tool verify-pin + test-signature -s 9a (RSA)" 'Successful RSA verification' \
  "${YK[@]}" -a verify-pin -P "$PIN" -a test-signature -s 9a -i "$PKI/9a.cert.pem"
has "yubico-piv-tool verify-pin + test-signature -s 9c (ECDSA, PIN always)" 'Successful ECDSA verification' \
  "${YK[@]}" -a verify-pin -P "$PIN" -a test-signature -s 9c -i "$PKI/9c.cert.pem"
has "yubico-piv-tool verify-pin + test-decipher -s 9d (RSA)" 'Successfully performed RSA decryption' \
  "${YK[@]}" -a verify-pin -P "$PIN" -a test-decipher -s 9d -i "$PKI/9d.cert.pem"

# On-card key generation (default 3DES management key, mutual authentication). The
# generated public key is certified by the test CA (yubico-piv-tool 2.2's own
# selfsign-certificate fails under OpenSSL 3 before it sends any APDU), imported with
# PUT DATA, and read back both by yubico-piv-tool and by OpenSC.
check "yubico-piv-tool -a generate -s 9e -A ECCP256" \
  "${YK[@]}" -a generate -s 9e -A ECCP256 -o "$W/gen9e.pub.pem"
{
  openssl pkey -pubin -in "$W/gen9e.pub.pem" -outform der -out "$W/gen9e.pub.der"
  openssl req -new -key "$PKI/ca.key.pem" -subj "/CN=dcred generated 9e" -out "$W/gen9e.csr"
  openssl x509 -req -in "$W/gen9e.csr" -CA "$PKI/ca.cert.pem" -CAkey "$PKI/ca.key.pem" -set_serial 99 \
    -days 30 -force_pubkey "$W/gen9e.pub.pem" -out "$W/gen9e.cert.pem"
} 2>>"$W/out.log"
check "yubico-piv-tool -a import-certificate -s 9e" "${YK[@]}" -a import-certificate -s 9e -i "$W/gen9e.cert.pem"
check "generated 9e public key read back from the card's certificate" bash -c '
  "$@" -a read-certificate -s 9e -o "'"$W"'/gen9e.read.pem" &&
  openssl x509 -in "'"$W"'/gen9e.read.pem" -pubkey -noout | openssl pkey -pubin -outform der | cmp - "'"$W"'/gen9e.pub.der"' _ "${YK[@]}"
has "generated 9e key signs without a PIN (yubico-piv-tool test-signature)" 'Successful ECDSA verification' \
  "${YK[@]}" -a test-signature -s 9e -i "$W/gen9e.cert.pem"
check "OpenSC reads the generated 9e public key" bash -c '
  "$@" --read-object --type pubkey --id 04 -o "'"$W"'/gen9e.p11.der" &&
  openssl pkey -pubin -inform der -in "'"$W"'/gen9e.p11.der" -outform der | cmp - "'"$W"'/gen9e.pub.der"' _ "${P11[@]}"

# RSA-2048 generation into an empty retired slot: the 270-byte answer comes back through
# 61xx / GET RESPONSE; the new key then decrypts (certificate made as above).
check "yubico-piv-tool -a generate -s 84 -A RSA2048" \
  "${YK[@]}" -a generate -s 84 -A RSA2048 -o "$W/gen84.pub.pem"
has "generated 84 public key is RSA-2048" 'Public-Key: \(2048 bit\)' \
  openssl pkey -pubin -in "$W/gen84.pub.pem" -noout -text
openssl x509 -req -in "$W/gen9e.csr" -CA "$PKI/ca.cert.pem" -CAkey "$PKI/ca.key.pem" -set_serial 100 \
  -days 30 -force_pubkey "$W/gen84.pub.pem" -out "$W/gen84.cert.pem" 2>>"$W/out.log"
check "yubico-piv-tool -a import-certificate -s 84" "${YK[@]}" -a import-certificate -s 84 -i "$W/gen84.cert.pem"
has "generated 84 key decrypts (verify-pin + test-decipher)" 'Successfully performed RSA decryption' \
  "${YK[@]}" -a verify-pin -P "$PIN" -a test-decipher -s 84 -i "$W/gen84.cert.pem"

# --- PIN retry counter, blocking, unblocking, persistence ------------------------------------
# shellcheck disable=SC2317 # invoked through has
verify_status() { opensc-tool -r 0 -c default -s 00A4040009A00000030800001000 -s 0020008000 2>&1 | tail -1; }
has "VERIFY status after reset: 63 C3" 'SW1=0x63, SW2=0xC3' verify_status
has "wrong PIN 1 -> 2 tries left" '2 tries left' "${YK[@]}" -a verify-pin -P 000000
has "wrong PIN 2 -> 1 tries left" '1 tries left' "${YK[@]}" -a verify-pin -P 000000
has "wrong PIN 3 -> blocked" 'blocked' "${YK[@]}" -a verify-pin -P 000000
has "right PIN refused while blocked" 'blocked' "${YK[@]}" -a verify-pin -P "$PIN"
has "VERIFY status: 69 83 (blocked)" 'SW1=0x69, SW2=0x83' verify_status
has "OpenSC login refused while blocked" 'CKR_PIN_LOCKED' "${P11[@]}" --login --pin "$PIN" -O
has "unblock-pin with a wrong PUK -> 2 tries left" '2 tries left' "${YK[@]}" -a unblock-pin -P 00000000 -N "$PIN"
has "unblock-pin with the PUK (RESET RETRY COUNTER)" 'Successfully unblocked' "${YK[@]}" -a unblock-pin -P "$PUK" -N "$PIN"
has "PIN verifies again after unblock" 'Successfully verified PIN' "${YK[@]}" -a verify-pin -P "$PIN"
has "change-pin (CHANGE REFERENCE DATA) to 654321" 'Successfully changed the pin code' \
  "${YK[@]}" -a change-pin -P "$PIN" -N 654321
has "new PIN works with OpenSC" 'Certificate Object' \
  "${P11[@]}" --login --pin 654321 -O --type cert
has "change-pin back" 'Successfully changed the pin code' "${YK[@]}" -a change-pin -P 654321 -N "$PIN"
"${YK[@]}" -a verify-pin -P 000000 >>"$W/out.log" 2>&1 # one failure, to see it persist

pid=${PCSC_CARD_PIDS[0]}
if pcsc_card_stop 0; then ok "card removal seen by pcscd"; else bad "card removal seen by pcscd"; fi
if grep -q 'piv-sim: stopped' "$W/card0.log"; then ok "piv-sim exits cleanly on SIGTERM (pid $pid)"; else bad "piv-sim SIGTERM exit"; fi
if pcsc_card_start 0 "$W/card.json" "$W/count"; then ok "card re-inserted"; else bad "card re-inserted"; fi
has "retry counter persisted across card restart: 63 C2" 'SW1=0x63, SW2=0xC2' verify_status
has "PIN resets the counter" 'Successfully verified PIN' "${YK[@]}" -a verify-pin -P "$PIN"
if grep -Eqi '31 ?32 ?33 ?34 ?35 ?36|123456|654321' "$W/card0.log"; then bad "card log holds no PIN"; else ok "card log holds no PIN"; fi
info "APDUs answered by the re-inserted card: $(apdus)"
exit 0
