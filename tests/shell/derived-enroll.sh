#!/usr/bin/env bash
# tests/shell/derived-enroll.sh — derived-credential enrollment end to end on loopback:
# virtual PIV card on real pcscd -> `dcred enroll` (the card's 9A key, through our module,
# signs the TLS-bound challenge) -> dcred-backend issues derived certificates, delivers the
# escrowed key-management keys (current and retired) and registers the device record.
# Then: what is on disk (mode, content, nothing PIN-dependent), PIN change, wrong PIN
# counting, back-end down, logs free of PINs, handles and KWKs.
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
. scripts/pcsc-env.sh
pcsc_env_install || exit 1
command -v python3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null
if [ -z "${NO_BUILD:-}" ]; then cargo build -q -p dcred-pkcs11 -p piv-sim -p dcred-backend -p dcred-cli || exit 1; fi
BIN=$ROOT/target/debug
MODULE=$BIN/libdcred_pkcs11.so

W=$(mktemp -d /tmp/dcred-enroll.XXXXXX)
BACKEND_PID=
stop_backend() { [ -n "$BACKEND_PID" ] && kill "$BACKEND_PID" 2>/dev/null && wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=; }
cleanup() { stop_backend; pcsc_env_stop; rm -rf "$W"; }
trap cleanup EXIT
passed=0 failed=0
ok() { echo "PASS $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); [ -f "$W/last.log" ] && tail -5 "$W/last.log" | sed 's/^/    /'; }

bash scripts/make-test-pki.sh "$W/pki" >/dev/null || exit 1
args=(); for s in 9a 9c 9d 9e 82 83; do args+=(--slot "$s" --key "$W/pki/$s.key.pem" --cert "$W/pki/$s.cert.pem"); done
"$BIN/piv-sim" provision --state "$W/card.json" "${args[@]}" >/dev/null || exit 1
pcsc_env_start "$W/env" || exit 1
pcsc_card_start 0 "$W/card.json" || exit 1

B=$W/backend
"$BIN/dcred-backend" init --data "$B" --piv-anchor "$W/pki/ca.cert.pem" >"$W/last.log" 2>&1 && ok "dcred-backend init with the PIV CA as trust anchor" || bad "backend init"
"$BIN/dcred-backend" escrow import --data "$B" --user "$W/pki/9a.cert.pem" --cert "$W/pki/82.cert.pem" --key "$W/pki/82.key.pem" --retired >"$W/last.log" 2>&1 &&
  "$BIN/dcred-backend" escrow import --data "$B" --user "$W/pki/9a.cert.pem" --cert "$W/pki/83.cert.pem" --key "$W/pki/83.key.pem" --retired >>"$W/last.log" 2>&1 &&
  "$BIN/dcred-backend" escrow import --data "$B" --user "$W/pki/9a.cert.pem" --cert "$W/pki/9d.cert.pem" --key "$W/pki/9d.key.pem" >>"$W/last.log" 2>&1 &&
  ok "escrow: the card's current (9D) and retired (82 RSA, 83 P-384) key-management keys" || bad "escrow import"
start_backend() { # start_backend [ADDRESS [EXTRA ARGS]] (default: a free loopback port)
  "$BIN/dcred-backend" serve --data "$B" --listen "${1:-127.0.0.1:0}" "${@:2}" >>"$W/backend.log" 2>&1 &
  BACKEND_PID=$!
  for _ in $(seq 50); do [ "$(grep -c "listening on" "$W/backend.log" 2>/dev/null)" -gt "${STARTS:-0}" ] && break; sleep 0.1; done
  STARTS=$((${STARTS:-0} + 1))
  ADDR=$(sed -n 's/.*listening on //p' "$W/backend.log" | tail -1)
  [ -n "$ADDR" ]
}
start_backend && ok "dcred-backend serve on $ADDR" || { bad "backend serve"; exit 1; }

export DCRED_DATA_DIR=$W/data
printf '123456\n' >"$W/cardpin"
printf '24681357\n' >"$W/pin"
enroll() { # enroll PINFILE [extra args]
  local f=$1; shift
  DCRED_LOG=trace DCRED_LOG_FILE="$W/module.log" "$BIN/dcred" enroll --backend "$ADDR" --trust-anchor "$B/tls-ca.cert.pem" \
    --module "$MODULE" --card-pin-file "$W/cardpin" --pin-file "$f" --iterations 1000 "$@"
}
enroll "$W/pin" --reader "Virtual PCD 00 00" >"$W/enroll.log" 2>&1 && ok "dcred enroll (reader picked by name)" || { cp "$W/enroll.log" "$W/last.log"; bad "dcred enroll"; }
enroll "$W/pin" --reader "No Such Reader" >"$W/last.log" 2>&1
grep -q "no PIV card in a reader named like 'No Such Reader'" "$W/last.log" && ok "an unknown reader is a clear error" || bad "unknown reader"
grep -q '^\[5/5\] storing the credential' "$W/enroll.log" && ok "one progress line per step" || bad "progress lines"
CRED=$(ls "$DCRED_DATA_DIR"/credentials/*.json 2>/dev/null | head -1)
[ -n "$CRED" ] && [ "$(stat -c %a "$CRED")" = 600 ] && ok "credential file written, mode 0600" || bad "credential file mode"
"$BIN/dcred" list >"$W/list.txt" 2>&1 && grep -q "dcred test 9a (derived)" "$W/list.txt" && ok "dcred list shows it" || { cp "$W/list.txt" "$W/last.log"; bad "dcred list"; }

# What the credential holds: certificates chain to the issuing CA with the derived policy;
# the escrowed keys' certificates are the card's 9D and 82 ones.
python3 - "$CRED" "$W" <<'PY' >"$W/last.log" 2>&1 && ok "credential: auth, sign, key management and retired keys with their certificates" || bad "credential content"
import base64, json, sys
c = json.load(open(sys.argv[1])); w = sys.argv[2]
roles = [k["role"] if isinstance(k["role"], str) else "retired%d" % k["role"]["retired"] for k in c["keys"]]
assert roles == ["authentication", "signature", "key_management", "retired1", "retired2"], roles
for k, name in zip(c["keys"], ["auth", "sign", "km", "retired83", "retired"]):
    open(f"{w}/{name}.der", "wb").write(base64.b64decode(k["cert"]))
open(f"{w}/issuing.der", "wb").write(base64.b64decode(c["ca_cert"]))
assert c["protocredential"]["kdf"] == "pbkdf2-hmac-sha256"
assert len(base64.b64decode(c["protocredential"]["handle"])) == 32
PY
openssl x509 -inform DER -in "$W/issuing.der" -out "$W/issuing.pem"
for n in auth sign; do
  openssl x509 -inform DER -in "$W/$n.der" -out "$W/$n.pem"
  openssl verify -CAfile "$W/issuing.pem" "$W/$n.pem" >"$W/last.log" 2>&1 && ok "derived $n certificate chains to the back-end's issuing CA" || bad "$n chain"
done
openssl x509 -in "$W/auth.pem" -noout -text | grep -q "2.16.840.1.101.3.2.1.3.40" && ok "auth certificate carries id-fpki-common-derived-pivAuth" || bad "derived policy OID"
openssl x509 -in "$W/auth.pem" -noout -subject | grep -q "dcred test 9a" && ok "subject copied from the PIV certificate" || bad "subject"
cmp -s <(openssl x509 -inform DER -in "$W/km.der" -outform DER) <(openssl x509 -in "$W/pki/9d.cert.pem" -outform DER) &&
  cmp -s <(openssl x509 -inform DER -in "$W/retired.der" -outform DER) <(openssl x509 -in "$W/pki/82.cert.pem" -outform DER) &&
  cmp -s <(openssl x509 -inform DER -in "$W/retired83.der" -outform DER) <(openssl x509 -in "$W/pki/83.cert.pem" -outform DER) &&
  ok "escrowed certificates: 9D current, then retired ones newest first (83, 82)" || bad "escrowed certificates"

# Nothing on disk depends on the PIN: enroll the same card again under another PIN and
# compare the two files' shapes (same fields, same lengths); no PIN string anywhere.
printf '97531864\n' >"$W/pin2"
enroll "$W/pin2" >"$W/last.log" 2>&1 || bad "second enrollment"
python3 - "$DCRED_DATA_DIR/credentials" <<'PY' >"$W/last.log" 2>&1 && ok "two enrollments under two PINs have identically shaped files (no PIN-dependent field)" || bad "PIN-independent format"
import base64, json, os, sys
d = sys.argv[1]
files = [json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d)) if f.endswith(".json")]
assert len(files) == 2, len(files)
def shape(x):
    if isinstance(x, dict): return {k: shape(v) for k, v in x.items() if k not in ("id",)}
    if isinstance(x, list): return [shape(v) for v in x]
    if isinstance(x, str): return ("str", len(x))
    return type(x).__name__
a, b = files
for k in ("keys",):
    for e in a[k] + b[k]: e.pop("cert")  # certificates differ in serial and signature length
a.pop("ca_cert"); b.pop("ca_cert")
a["label"] = b["label"]
assert shape(a) == shape(b), (shape(a), shape(b))
PY
if grep -rlE "24681357|97531864" "$DCRED_DATA_DIR" >/dev/null; then bad "a PIN is in the data directory"; else ok "no PIN in the data directory"; fi
for f in "$DCRED_DATA_DIR"/credentials/*.json; do [ "$f" != "$CRED" ] && SECOND=$(basename "$f" .json); done
"$BIN/dcred-backend" device list --data "$B" >"$W/dev.txt" 2>&1
[ "$(grep -c active "$W/dev.txt")" = 2 ] && ok "back-end: two active device records" || { cp "$W/dev.txt" "$W/last.log"; bad "device records"; }

# PIN change through the back-end
ID=$(basename "$CRED" .json)
printf '11111111\n22222222\n' >"$W/pins-wrong"
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins-wrong" >"$W/last.log" 2>&1
grep -q "wrong PIN (9 attempt(s) left" "$W/last.log" && ok "change-pin with a wrong PIN: refused, 9 attempts left" || bad "wrong PIN counting"
printf '24681357\n13572468\n' >"$W/pins"
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins" >"$W/last.log" 2>&1 && ok "change-pin with the right PIN" || bad "change-pin"
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins" >"$W/last.log" 2>&1
grep -q "wrong PIN" "$W/last.log" && ok "the old PIN no longer works" || bad "old PIN after change"
printf '13572468\n24681357\n' >"$W/pins-back"
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins-back" >"$W/last.log" 2>&1 && ok "the new PIN works (and resets the count)" || bad "new PIN"
printf '12a456\n' >"$W/badpin"
enroll "$W/badpin" >"$W/last.log" 2>&1
grep -q "must be 6 to 64 digits" "$W/last.log" && ok "PIN policy enforced before anything happens" || bad "PIN policy"

# Back-end down: a clear error within the timeout, nothing hangs.
stop_backend
start=$(date +%s)
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins" >"$W/last.log" 2>&1
took=$(($(date +%s) - start))
grep -q "back-end unreachable" "$W/last.log" && [ "$took" -le 12 ] && ok "back-end down: clear error in ${took} s" || bad "back-end down (${took} s)"
start_backend "$ADDR" || bad "backend restart"
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins" >"$W/last.log" 2>&1 && ok "back-end restarted: records intact (PIN change works)" || bad "after restart"
"$BIN/dcred" change-pin "$ID" --pin-file "$W/pins-back" >"$W/last.log" 2>&1 || bad "PIN back to 24681357"
"$BIN/dcred" remove "$SECOND" >"$W/last.log" 2>&1 && [ "$(ls "$DCRED_DATA_DIR"/credentials/*.json | wc -l)" = 1 ] &&
  ok "dcred remove deletes the second credential" || bad "dcred remove"
# A credential with RSA-2048 derived keys (signed in software by aws-lc-rs)
enroll "$W/pin" --key-type rsa2048 --label "rsa derived" >"$W/last.log" 2>&1 && ok "dcred enroll --key-type rsa2048" || bad "RSA enrollment"

# --- The derived slot through the module (pkcs11-tool + openssl) -------------------------
P11=(pkcs11-tool --module "$MODULE")
DL=("${P11[@]}" --token-label "dcred test 9a (derived)")
"${P11[@]}" -L >"$W/L.txt" 2>&1
grep -q "token label *: dcred test 9a (derived)" "$W/L.txt" && grep -q "token label *: dcred test 9a$" "$W/L.txt" &&
  ok "pkcs11-tool -L: the card's slot and the derived credential's slot side by side" || { cp "$W/L.txt" "$W/last.log"; bad "derived slot listed"; }
DCRED_LOG=trace DCRED_LOG_FILE="$W/module.log" "${DL[@]}" -O >"$W/O.txt" 2>&1
[ "$(grep -c '^Certificate Object' "$W/O.txt")" = 5 ] && ! grep -q "Private Key" "$W/O.txt" &&
  ok "derived slot before login: 5 certificates, no private key (no network I/O needed)" || { cp "$W/O.txt" "$W/last.log"; bad "derived objects"; }
head -c 1000 /dev/urandom >"$W/msgdata"
dsign() { # dsign NAME ID CERT
  if DCRED_LOG=trace DCRED_LOG_FILE="$W/module.log" "${DL[@]}" --login --pin 24681357 --sign -m ECDSA-SHA256 --id "$2" -i "$W/msgdata" -o "$W/sig" --signature-format openssl >"$W/last.log" 2>&1 &&
    openssl dgst -sha256 -verify <(openssl x509 -in "$3" -pubkey -noout) -signature "$W/sig" "$W/msgdata" >>"$W/last.log" 2>&1; then ok "$1"; else bad "$1"; fi
}
dsign "derived authentication key signs (activation at C_Login); openssl verifies with the issued certificate" 01 "$W/auth.pem"
dsign "derived signature key signs" 02 "$W/sign.pem"
ddecrypt() { # ddecrypt NAME ID CERT MECH "openssl opts" "pkcs11-tool opts"
  head -c 32 /dev/urandom >"$W/msg"
  # shellcheck disable=SC2086
  if openssl pkeyutl -encrypt -pubin -inkey <(openssl x509 -in "$3" -pubkey -noout) $5 -in "$W/msg" -out "$W/enc" >"$W/last.log" 2>&1 &&
    DCRED_LOG=trace DCRED_LOG_FILE="$W/module.log" "${DL[@]}" --login --pin 24681357 --decrypt -m "$4" --id "$2" $6 -i "$W/enc" -o "$W/dec" >>"$W/last.log" 2>&1 &&
    cmp -s "$W/msg" "$W/dec"; then ok "$1"; else bad "$1"; fi
}
ddecrypt "escrowed current key-management key decrypts (RSA-PKCS)" 03 "$W/pki/9d.cert.pem" RSA-PKCS "" ""
ddecrypt "escrowed current key decrypts (OAEP SHA-256)" 03 "$W/pki/9d.cert.pem" RSA-PKCS-OAEP \
  "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256" "--hash-algorithm SHA256 --mgf MGF1-SHA256"
ddecrypt "escrowed retired key decrypts (RSA-PKCS)" 06 "$W/pki/82.cert.pem" RSA-PKCS "" ""
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$W/peer.key" 2>/dev/null
openssl pkey -in "$W/peer.key" -pubout -outform DER -out "$W/peer.pub.der"
openssl pkeyutl -derive -inkey "$W/peer.key" -peerkey <(openssl x509 -in "$W/pki/83.cert.pem" -pubkey -noout) -out "$W/z1"
if "${DL[@]}" --login --pin 24681357 --derive -m ECDH1-DERIVE --id 05 -i "$W/peer.pub.der" -o "$W/z2" >"$W/last.log" 2>&1 &&
  cmp -s "$W/z1" "$W/z2"; then ok "escrowed retired P-384 key: ECDH1-DERIVE equals openssl's"; else bad "derived-slot ECDH"; fi
RL=("${P11[@]}" --token-label "rsa derived" --login --pin 24681357)
"${RL[@]}" --read-object --type cert --id 01 -o "$W/rauth.der" >"$W/last.log" 2>&1
openssl x509 -inform DER -in "$W/rauth.der" -pubkey -noout >"$W/rauth.pub" 2>>"$W/last.log"
if "${RL[@]}" --sign -m SHA256-RSA-PKCS --id 01 -i "$W/msgdata" -o "$W/sig" >>"$W/last.log" 2>&1 &&
  openssl dgst -sha256 -verify "$W/rauth.pub" -signature "$W/sig" "$W/msgdata" >>"$W/last.log" 2>&1; then
  ok "RSA derived key: SHA256-RSA-PKCS verified by openssl"; else bad "RSA derived SHA256-RSA-PKCS"; fi
if "${RL[@]}" --sign -m SHA384-RSA-PKCS-PSS --mgf MGF1-SHA384 --id 01 -i "$W/msgdata" -o "$W/sig" >"$W/last.log" 2>&1 &&
  openssl dgst -sha384 -verify "$W/rauth.pub" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto -signature "$W/sig" "$W/msgdata" >>"$W/last.log" 2>&1; then
  ok "RSA derived key: SHA384-RSA-PKCS-PSS verified by openssl"; else bad "RSA derived PSS"; fi
openssl dgst -sha256 -binary "$W/msgdata" >"$W/msg.sha256"
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' | cat - "$W/msg.sha256" >"$W/di"
if "${RL[@]}" --sign -m RSA-PKCS --id 02 -i "$W/di" -o "$W/sig" >"$W/last.log" 2>&1 &&
  "${RL[@]}" --read-object --type cert --id 02 -o "$W/rsign.der" >>"$W/last.log" 2>&1 &&
  openssl dgst -sha256 -verify <(openssl x509 -inform DER -in "$W/rsign.der" -pubkey -noout) -signature "$W/sig" "$W/msgdata" >>"$W/last.log" 2>&1; then
  ok "RSA derived signature key: RSA-PKCS over a caller DigestInfo"; else bad "RSA derived RSA-PKCS DigestInfo"; fi
"${RL[@]}" --sign -m RSA-X-509 --id 01 -i "$W/rauth.der" -o "$W/sig" >"$W/last.log" 2>&1
grep -q CKR_MECHANISM_INVALID "$W/last.log" && ok "raw RSA (RSA-X-509) is refused for software keys" || bad "RSA-X-509 on a software key"
"${DL[@]}" --login --pin 11112222 -O >"$W/last.log" 2>&1
grep -q CKR_PIN_INCORRECT "$W/last.log" && ok "derived slot, wrong PIN -> CKR_PIN_INCORRECT (counted by the back-end)" || bad "derived wrong PIN"
DID=$("$BIN/dcred-backend" device list --data "$B" | awk 'NR==2 {print $1}')
"$BIN/dcred-backend" device lock --data "$B" "$DID" >"$W/last.log" 2>&1 || true
"$BIN/dcred-backend" device lock --data "$B" "$("$BIN/dcred-backend" device list --data "$B" | awk 'NR==3 {print $1}')" >>"$W/last.log" 2>&1 || true
"${DL[@]}" --login --pin 24681357 -O >"$W/last.log" 2>&1
grep -q CKR_PIN_LOCKED "$W/last.log" && ok "record locked by the administrator -> CKR_PIN_LOCKED" || bad "derived locked"
for id in $("$BIN/dcred-backend" device list --data "$B" | awk 'NR>1 {print $1}'); do "$BIN/dcred-backend" device unlock --data "$B" "$id" >/dev/null 2>&1; done
dsign "after admin unlock the derived key signs again" 01 "$W/auth.pem"
stop_backend
start=$(date +%s)
"${DL[@]}" --login --pin 24681357 -O >"$W/last.log" 2>&1
took=$(($(date +%s) - start))
grep -q CKR_DEVICE_ERROR "$W/last.log" && [ "$took" -le 12 ] && ok "back-end down: derived login -> CKR_DEVICE_ERROR in ${took} s" || bad "derived login with back-end down (${took} s)"
if "${P11[@]}" --token-label "dcred test 9a" --login --pin 123456 --sign -m SHA256-RSA-PKCS --id 01 -i "$W/msgdata" -o "$W/sig" >"$W/last.log" 2>&1 &&
  openssl dgst -sha256 -verify <(openssl x509 -in "$W/pki/9a.cert.pem" -pubkey -noout) -signature "$W/sig" "$W/msgdata" >>"$W/last.log" 2>&1; then
  ok "hardware slot unaffected while the back-end is down"; else bad "hardware slot with back-end down"; fi
start_backend "$ADDR" --lock-limit 3 || bad "backend restart"
# C_SetPIN on the derived slot changes the PIN through the back-end
"${DL[@]}" --login --pin 24681357 --change-pin --new-pin 86420975 >"$W/last.log" 2>&1 && ok "C_SetPIN (pkcs11-tool --change-pin) on the derived slot" || bad "derived C_SetPIN"
DL2=("${P11[@]}" --token-label "dcred test 9a (derived)")
DLN=("${DL2[@]}" --login --pin 86420975)
if "${DLN[@]}" --sign -m ECDSA-SHA256 --id 01 -i "$W/msgdata" -o "$W/sig" >"$W/last.log" 2>&1; then ok "the new PIN activates"; else bad "new PIN after C_SetPIN"; fi
# wrong PINs through the module until the record locks (limit 3 on this back-end)
"${DL2[@]}" --login --pin 10101010 -O >"$W/w1.log" 2>&1
"${DL2[@]}" --login --pin 20202020 -O >"$W/w2.log" 2>&1
"${DL2[@]}" --login --pin 30303030 -O >"$W/w3.log" 2>&1
"${DLN[@]}" -O >"$W/w4.log" 2>&1
grep -q CKR_PIN_INCORRECT "$W/w1.log" && grep -q CKR_PIN_INCORRECT "$W/w2.log" && grep -q CKR_PIN_LOCKED "$W/w3.log" && grep -q CKR_PIN_LOCKED "$W/w4.log" &&
  ok "wrong PINs through C_Login: incorrect, incorrect, then locked; the right PIN is then refused too" || { cat "$W"/w?.log >"$W/last.log"; bad "lock through the module"; }
for id in $("$BIN/dcred-backend" device list --data "$B" | awk 'NR>1 {print $1}'); do "$BIN/dcred-backend" device unlock --data "$B" "$id" >/dev/null 2>&1; done
"${DLN[@]}" -O >"$W/last.log" 2>&1 && ok "admin unlock: the right PIN works again" || bad "unlock after lock"
for id in $("$BIN/dcred-backend" device list --data "$B" | awk 'NR>1 {print $1}'); do "$BIN/dcred-backend" device revoke --data "$B" "$id" >/dev/null 2>&1; done
"${DLN[@]}" -O >"$W/last.log" 2>&1
grep -qE "0x8DC00001|DCRED_CKR_CREDENTIAL_REVOKED|0x8dc00001" "$W/last.log" && ok "revoked -> DCRED_CKR_CREDENTIAL_REVOKED (0x8DC00001)" || bad "revoked error code"

# Logs: module trace log and back-end log hold no PIN, handle or KWK.
HANDLE_B64=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["protocredential"]["handle"])' "$CRED")
HANDLE_HEX=$(python3 -c 'import base64,sys; print(base64.b64decode(sys.argv[1]).hex())' "$HANDLE_B64")
if grep -qE "123456|24681357|97531864|13572468|86420975|$HANDLE_HEX" "$W/module.log" "$W/backend.log" "$W/enroll.log" 2>/dev/null ||
  grep -qF "$HANDLE_B64" "$W/module.log" "$W/backend.log" "$W/enroll.log"; then
  bad "a PIN or the handle appears in a log"
else ok "trace logs of module, back-end and CLI: no PIN, no handle"; fi
[ -s "$W/module.log" ] && ok "the module's trace log was written (the scan above is not vacuous)" || bad "module trace log empty"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
