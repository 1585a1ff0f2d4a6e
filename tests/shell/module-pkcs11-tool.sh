#!/usr/bin/env bash
# tests/shell/module-pkcs11-tool.sh — our module through pkcs11-tool and openssl, against
# virtual PIV cards (piv-sim) on the real pcscd + vpcd stack. Standalone: installs what is
# missing, builds what it needs, starts pcscd and two cards, stops them by PID on exit.
#
#   -L / -O / --test; sign with every RSA and ECDSA mechanism (verified by openssl against
#   the card's certificates); decrypt RSA-PKCS and OAEP data openssl encrypted; ECDH
#   derive compared with openssl's; APDU counts cold and warm; two readers with two cards;
#   card removed and re-inserted; wrong PIN down to CKR_PIN_LOCKED.
# Prints PASS/FAIL/INFO lines and ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
. scripts/pcsc-env.sh
pcsc_env_install || exit 1
dpkg -s libnss3-tools >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnss3-tools >/dev/null || exit 1
: "${MODULE:=$ROOT/target/debug/libdcred_pkcs11.so}"
if [ -z "${NO_BUILD:-}" ]; then cargo build -q -p dcred-pkcs11 -p piv-sim || exit 1; fi

W=$(mktemp -d /tmp/dcred-p11tool.XXXXXX)
cleanup() { pcsc_env_stop; rm -rf "$W"; }
trap cleanup EXIT
passed=0 failed=0
ok() { echo "PASS $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); [ -f "$W/last.log" ] && tail -4 "$W/last.log" | sed 's/^/    /'; }
check() { local n=$1; shift; if "$@" >"$W/last.log" 2>&1; then ok "$n"; else bad "$n"; fi; }
apdus() { cat "$W/count$1" 2>/dev/null || echo 0; }

# --- test PKI and two cards -----------------------------------------------------------
bash scripts/make-test-pki.sh "$W/a" >/dev/null || exit 1
slots=(); for s in 9a 9c 9d 9e 82 83; do slots+=(--slot "$s" --key "$W/a/$s.key.pem" --cert "$W/a/$s.cert.pem"); done
"$PIV_SIM" provision --state "$W/cardA.json" "${slots[@]}" >/dev/null || exit 1
# card B: other algorithms (P-384 authentication, RSA-1024 signature, P-256 key management)
mkdir -p "$W/b"
mk() { # mk SLOT GENPKEY-ARGS...
  local s=$1; shift
  openssl genpkey "$@" -out "$W/b/$s.key.pem" 2>/dev/null &&
    openssl req -new -x509 -key "$W/b/$s.key.pem" -subj "/CN=card B $s" -days 30 -out "$W/b/$s.cert.pem"
}
mk 9a -algorithm EC -pkeyopt ec_paramgen_curve:P-384
mk 9c -algorithm RSA -pkeyopt rsa_keygen_bits:1024
mk 9d -algorithm EC -pkeyopt ec_paramgen_curve:P-256
"$PIV_SIM" provision --state "$W/cardB.json" --pin 87654321 \
  --slot 9a --key "$W/b/9a.key.pem" --cert "$W/b/9a.cert.pem" \
  --slot 9c --key "$W/b/9c.key.pem" --cert "$W/b/9c.cert.pem" \
  --slot 9d --key "$W/b/9d.key.pem" --cert "$W/b/9d.cert.pem" >/dev/null || exit 1

pcsc_env_start "$W/env" || exit 1
pcsc_card_start 0 "$W/cardA.json" "$W/count0" || exit 1

T=(pkcs11-tool --module "$MODULE" --slot 0)
L=("${T[@]}" --login --pin 123456)
for s in 9a 9c 9d 9e 82 83; do openssl x509 -in "$W/a/$s.cert.pem" -pubkey -noout >"$W/a/$s.pub"; done
for s in 9a 9c 9d; do openssl x509 -in "$W/b/$s.cert.pem" -pubkey -noout >"$W/b/$s.pub"; done

# --- listing ----------------------------------------------------------------------------
pkcs11-tool --module "$MODULE" -L >"$W/L.txt" 2>&1
grep -q "token label *: dcred test 9a" "$W/L.txt" && grep -q "Virtual PCD 00 00" "$W/L.txt" &&
  ok "-L shows the card's token (label from the 9A certificate)" || { cp "$W/L.txt" "$W/last.log"; bad "-L"; }
grep -q "token flags *:.*login required" "$W/L.txt" && ok "-L: login required" || bad "-L flags"

before=$(apdus 0)
"${T[@]}" -O >"$W/O.txt" 2>&1
cold_O=$(($(apdus 0) - before))
[ "$(grep -c '^Certificate Object' "$W/O.txt")" = 6 ] && [ "$(grep -c '^Private Key Object' "$W/O.txt")" = 1 ] &&
  grep -A1 '^Private Key Object' "$W/O.txt" | grep -q "CARD AUTH key" &&
  ok "-O without login: 6 certificates; only the PIN-less 9E private key" || { cp "$W/O.txt" "$W/last.log"; bad "-O"; }
grep -q "Profile object" "$W/O.txt" && ok "-O: CKO_PROFILE object present" || bad "-O profile (CKP_PUBLIC_CERTIFICATES_TOKEN)"
for pair in "01:Certificate for PIV Authentication" "02:Certificate for Digital Signature" \
  "03:Certificate for Key Management" "04:Certificate for Card Authentication" \
  "05:Certificate for Retired Key Management 1" "06:Certificate for Retired Key Management 2"; do
  grep -A3 "label: *${pair#*:}" "$W/O.txt" | grep -q "ID: *${pair%%:*}" || { bad "CKA_ID ${pair}"; continue; }
done
ok "CKA_IDs follow the OpenSC convention (01=9A 02=9C 03=9D 04=9E 05..=82..)"
"${L[@]}" -O >"$W/Ol.txt" 2>&1
[ "$(grep -c '^Private Key Object' "$W/Ol.txt")" = 6 ] && ok "-O with login: 6 private keys" || { cp "$W/Ol.txt" "$W/last.log"; bad "-O login"; }
grep -A6 "label: *SIGN key" "$W/Ol.txt" | grep -q "always authenticate" &&
  ok "9C private key has CKA_ALWAYS_AUTHENTICATE" || bad "9C always authenticate"
echo "INFO APDUs: pkcs11-tool -O (new process, cold card cache) = $cold_O"

check "pkcs11-tool --test" "${L[@]}" --test

# --- NSS (Firefox, Thunderbird): certificates listed without a PIN prompt -----------------
mkdir -p "$W/nss"
certutil -N -d "sql:$W/nss" --empty-password >/dev/null 2>&1
modutil -dbdir "sql:$W/nss" -add dcred -libfile "$MODULE" -force >"$W/last.log" 2>&1 &&
  ok "NSS modutil loads the module" || bad "modutil -add"
certutil -L -d "sql:$W/nss" -h all </dev/null >"$W/nss.txt" 2>&1
[ "$(grep -c '^dcred test 9a:' "$W/nss.txt")" -ge 6 ] &&
  ok "NSS certutil -L -h all lists the 6 card certificates without the PIN" || { cp "$W/nss.txt" "$W/last.log"; bad "NSS certificate listing"; }
echo 123456 >"$W/pinfile"
certutil -K -d "sql:$W/nss" -h "dcred test 9a" -f "$W/pinfile" </dev/null >"$W/nssk.txt" 2>&1
[ "$(grep -c '<' "$W/nssk.txt")" -ge 6 ] && ok "NSS certutil -K with the PIN lists the private keys" || { cp "$W/nssk.txt" "$W/last.log"; bad "NSS key listing"; }

# --- signatures ---------------------------------------------------------------------------
head -c 1000 /dev/urandom >"$W/data"
for h in sha1 sha256 sha384 sha512; do openssl dgst -$h -binary "$W/data" >"$W/data.$h"; done
sign() { # sign NAME MECH ID INPUT PUB OPENSSL-DGST-ARGS... (extra pkcs11-tool args in SIGARGS)
  local n=$1 m=$2 id=$3 in=$4 pub=$5; shift 5
  # shellcheck disable=SC2086
  if "${L[@]}" --sign -m "$m" --id "$id" -i "$in" -o "$W/sig" ${SIGARGS:-} >"$W/last.log" 2>&1 &&
    openssl dgst "$@" -verify "$pub" -signature "$W/sig" "$W/data" >>"$W/last.log" 2>&1; then ok "$n"; else bad "$n"; fi
}
before=$(apdus 0)
sign "sign SHA256-RSA-PKCS (9A)" SHA256-RSA-PKCS 01 "$W/data" "$W/a/9a.pub" -sha256
echo "INFO APDUs: pkcs11-tool --login --sign (new process: load + VERIFY + signature) = $(($(apdus 0) - before))"
for h in sha1 sha384 sha512; do
  H=${h^^}; sign "sign $H-RSA-PKCS (9A)" "$H-RSA-PKCS" 01 "$W/data" "$W/a/9a.pub" -$h
done
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' | cat - "$W/data.sha256" >"$W/di"
sign "sign RSA-PKCS with caller DigestInfo (9A)" RSA-PKCS 01 "$W/di" "$W/a/9a.pub" -sha256
for h in sha256 sha384 sha512; do
  H=${h^^}
  SIGARGS="--mgf MGF1-$H" sign "sign $H-RSA-PKCS-PSS (9A)" "$H-RSA-PKCS-PSS" 01 "$W/data" "$W/a/9a.pub" -$h \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto
done
SIGARGS="--hash-algorithm SHA256 --mgf MGF1-SHA256" sign "sign RSA-PKCS-PSS over a hash (9A)" RSA-PKCS-PSS 01 \
  "$W/data.sha256" "$W/a/9a.pub" -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto
# RSA-X-509: raw; pad a DigestInfo by hand and check the recovered block
{ printf '\x00\x01'; head -c $((256 - 3 - 51)) /dev/zero | tr '\0' '\377'; printf '\x00'; cat "$W/di"; } >"$W/raw"
if "${L[@]}" --sign -m RSA-X-509 --id 01 -i "$W/raw" -o "$W/sig" >"$W/last.log" 2>&1 &&
  openssl pkeyutl -verifyrecover -pubin -inkey "$W/a/9a.pub" -pkeyopt rsa_padding_mode:none -in "$W/sig" -out "$W/rec" >>"$W/last.log" 2>&1 &&
  cmp -s "$W/raw" "$W/rec"; then ok "sign RSA-X-509 (9A)"; else bad "sign RSA-X-509 (9A)"; fi
# 9C: ECDSA P-256 with CKA_ALWAYS_AUTHENTICATE (pkcs11-tool does the context-specific login)
SIGARGS="--signature-format openssl" sign "sign ECDSA over SHA-256 hash (9C, context login)" ECDSA 02 "$W/data.sha256" "$W/a/9c.pub" -sha256
for h in sha1 sha256 sha384 sha512; do
  H=${h^^}
  SIGARGS="--signature-format openssl" sign "sign ECDSA-$H (9C)" "ECDSA-$H" 02 "$W/data" "$W/a/9c.pub" -$h
done
# The 9C PIN check and signature go in one transaction: in the card's log, every GENERAL
# AUTHENTICATE on 9C (INS 87, P2 9C) directly follows a VERIFY (INS 20).
awk '/^piv-sim: #[0-9]+ /{ if ($4 == "87" && $6 == "9C") { n++; if (prev != "20") bad++ } prev = $4 }
  END { exit !(n > 0 && bad == 0) }' "$PCSC_ENV_DIR/card0.log" &&
  ok "9C: each signature's VERIFY and GENERAL AUTHENTICATE are adjacent on the card" || bad "9C VERIFY/GA adjacency"

# --- decryption ---------------------------------------------------------------------------
decrypt() { # decrypt NAME ID PUB MECH "openssl opts" "pkcs11-tool opts"
  local n=$1 id=$2 pub=$3 m=$4 oo=$5 po=$6
  head -c 32 /dev/urandom >"$W/msg"
  # shellcheck disable=SC2086
  if openssl pkeyutl -encrypt -pubin -inkey "$pub" $oo -in "$W/msg" -out "$W/enc" >"$W/last.log" 2>&1 &&
    "${L[@]}" --decrypt -m "$m" --id "$id" $po -i "$W/enc" -o "$W/dec" >>"$W/last.log" 2>&1 &&
    cmp -s "$W/msg" "$W/dec"; then ok "$n"; else bad "$n"; fi
}
for k in "03:9d:9D" "05:82:retired 82"; do
  id=${k%%:*} rest=${k#*:}; s=${rest%%:*} name=${rest#*:}
  decrypt "decrypt RSA-PKCS ($name)" "$id" "$W/a/$s.pub" RSA-PKCS "" ""
  decrypt "decrypt RSA-PKCS-OAEP SHA-1 ($name)" "$id" "$W/a/$s.pub" RSA-PKCS-OAEP "-pkeyopt rsa_padding_mode:oaep" "--hash-algorithm SHA-1 --mgf MGF1-SHA1"
  decrypt "decrypt RSA-PKCS-OAEP SHA-256 ($name)" "$id" "$W/a/$s.pub" RSA-PKCS-OAEP \
    "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256" "--hash-algorithm SHA256 --mgf MGF1-SHA256"
done
# a corrupted ciphertext is refused, not decrypted to garbage
openssl pkeyutl -encrypt -pubin -inkey "$W/a/9d.pub" -in "$W/msg" -out "$W/enc" 2>/dev/null
printf '\x01' | dd of="$W/enc" bs=1 seek=100 conv=notrunc 2>/dev/null
if "${L[@]}" --decrypt -m RSA-PKCS --id 03 -i "$W/enc" -o "$W/dec" >"$W/last.log" 2>&1; then bad "corrupted RSA-PKCS ciphertext refused"
else grep -q CKR_ENCRYPTED_DATA_INVALID "$W/last.log" && ok "corrupted ciphertext -> CKR_ENCRYPTED_DATA_INVALID" || bad "corrupted ciphertext error code"; fi

# --- ECDH ----------------------------------------------------------------------------------
derive() { # derive NAME ID PUB CURVE
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:"$4" -out "$W/peer.key" 2>/dev/null
  openssl pkey -in "$W/peer.key" -pubout -outform DER -out "$W/peer.pub.der"
  openssl pkeyutl -derive -inkey "$W/peer.key" -peerkey "$3" -out "$W/z1"
  if "${L[@]}" --derive -m ECDH1-DERIVE --id "$2" -i "$W/peer.pub.der" -o "$W/z2" >"$W/last.log" 2>&1 &&
    cmp -s "$W/z1" "$W/z2"; then ok "$1"; else bad "$1"; fi
}
derive "ECDH1-DERIVE P-384 (retired 83) equals openssl's" 06 "$W/a/83.pub" P-384

# --- two readers, two cards ----------------------------------------------------------------
pcsc_card_start 1 "$W/cardB.json" "$W/count1" || exit 1
pkcs11-tool --module "$MODULE" -L >"$W/L2.txt" 2>&1
[ "$(grep -c 'token label' "$W/L2.txt")" = 2 ] && grep -q "card B 9a" "$W/L2.txt" &&
  ok "two readers with two cards: two tokens" || { cp "$W/L2.txt" "$W/last.log"; bad "two tokens"; }
B=(pkcs11-tool --module "$MODULE" --slot 1 --login --pin 87654321)
if "${B[@]}" --sign -m ECDSA-SHA384 --id 01 -i "$W/data" -o "$W/sig" --signature-format openssl >"$W/last.log" 2>&1 &&
  openssl dgst -sha384 -verify "$W/b/9a.pub" -signature "$W/sig" "$W/data" >>"$W/last.log" 2>&1; then
  ok "card B: ECDSA-SHA384 with a P-384 9A key"; else bad "card B P-384 sign"; fi
if "${B[@]}" --sign -m SHA256-RSA-PKCS --id 02 -i "$W/data" -o "$W/sig" >"$W/last.log" 2>&1 &&
  openssl dgst -sha256 -verify "$W/b/9c.pub" -signature "$W/sig" "$W/data" >>"$W/last.log" 2>&1; then
  ok "card B: SHA256-RSA-PKCS with an RSA-1024 9C key"; else bad "card B RSA-1024 sign"; fi
L_save=("${L[@]}"); L=("${B[@]}")
derive "ECDH1-DERIVE P-256 (card B 9D) equals openssl's" 03 "$W/b/9d.pub" P-256
L=("${L_save[@]}")
sign "card A still signs while card B is in" SHA256-RSA-PKCS 01 "$W/data" "$W/a/9a.pub" -sha256

# --- removal and re-insertion ----------------------------------------------------------------
pcsc_card_stop 0 || bad "card A removal seen by pcscd"
pkcs11-tool --module "$MODULE" -L >"$W/L3.txt" 2>&1
grep -q "(empty)" "$W/L3.txt" || grep -A1 "Slot 0" "$W/L3.txt" | grep -q "empty" &&
  ok "card removed: slot 0 shows no token" || { cp "$W/L3.txt" "$W/last.log"; bad "removed card still listed"; }
"${T[@]}" -O >"$W/last.log" 2>&1
grep -q "CKR_TOKEN_NOT_PRESENT" "$W/last.log" && ok "card removed: slot 0 -> CKR_TOKEN_NOT_PRESENT" || bad "removed card error"
pcsc_card_start 0 "$W/cardA.json" "$W/count0" || exit 1
sign "card re-inserted: signs again" SHA256-RSA-PKCS 01 "$W/data" "$W/a/9a.pub" -sha256

# --- wrong PIN down to the lock (card B, 3 tries) -------------------------------------------
wrong() { pkcs11-tool --module "$MODULE" --slot 1 --login --pin 00000000 -O >"$W/last.log" 2>&1; }
wrong; grep -q CKR_PIN_INCORRECT "$W/last.log" && ok "wrong PIN 1 -> CKR_PIN_INCORRECT" || bad "wrong PIN 1"
pkcs11-tool --module "$MODULE" -L 2>&1 | grep -A12 "card B" | grep -q "user PIN count low" &&
  ok "token flags: user PIN count low" || bad "count low flag"
wrong; grep -q CKR_PIN_INCORRECT "$W/last.log" && ok "wrong PIN 2 -> CKR_PIN_INCORRECT" || bad "wrong PIN 2"
pkcs11-tool --module "$MODULE" -L 2>&1 | grep -A12 "card B" | grep -q "final user PIN try" &&
  ok "token flags: final user PIN try" || bad "final try flag"
wrong; grep -qE "CKR_PIN_INCORRECT|CKR_PIN_LOCKED" "$W/last.log" && ok "wrong PIN 3 -> refused" || bad "wrong PIN 3"
"${B[@]}" -O >"$W/last.log" 2>&1
grep -q CKR_PIN_LOCKED "$W/last.log" && ok "right PIN after lock -> CKR_PIN_LOCKED" || bad "locked PIN"
pkcs11-tool --module "$MODULE" -L 2>&1 | grep -A12 "card B" | grep -q "user PIN locked" &&
  ok "token flags: user PIN locked" || bad "locked flag"
"${T[@]}" --login --pin 12345 -O >"$W/last.log" 2>&1
grep -q CKR_PIN_LEN_RANGE "$W/last.log" && ok "5-digit PIN -> CKR_PIN_LEN_RANGE (no card try spent)" || bad "PIN length"
sign "card A unaffected by card B's lock" SHA256-RSA-PKCS 01 "$W/data" "$W/a/9a.pub" -sha256

# --- a card that stops answering: bounded by card_timeout_ms, other readers unaffected ----
pcsc_card_stop 1 || bad "card B removal"
cp "$W/cardA.json" "$W/cardC.json"
PCSC_CARD_EXTRA_ARGS="--stall-ins 87" pcsc_card_start 1 "$W/cardC.json" "$W/count1" || exit 1
printf 'card_timeout_ms = 2000\n' >"$W/dcred.toml"
start=$(date +%s)
DCRED_CONFIG="$W/dcred.toml" DCRED_LOG=error DCRED_LOG_FILE="$W/stall.log" \
  pkcs11-tool --module "$MODULE" --slot 1 --login --pin 123456 --sign -m SHA256-RSA-PKCS --id 01 \
  -i "$W/data" -o "$W/sig" >"$W/last.log" 2>&1
took=$(($(date +%s) - start))
grep -q CKR_DEVICE_ERROR "$W/last.log" && [ "$took" -le 10 ] &&
  ok "card stalls on GENERAL AUTHENTICATE: CKR_DEVICE_ERROR after the 2 s timeout (${took} s)" ||
  bad "stalled card: expected CKR_DEVICE_ERROR within 10 s, took ${took} s"
grep -q "did not answer within 2000 ms" "$W/stall.log" && ok "stall reported in the log" || bad "stall log line"
sign "card A in the other reader signs while reader 1 is stuck" SHA256-RSA-PKCS 01 "$W/data" "$W/a/9a.pub" -sha256
pcsc_card_stop 1 || bad "stalled card removal"

# --- a card without the PIV application is no token ---------------------------------------
PCSC_CARD_EXTRA_ARGS="--not-piv" pcsc_card_start 1 "$W/cardC.json" "$W/count1" || exit 1
pkcs11-tool --module "$MODULE" --slot 1 -O >"$W/last.log" 2>&1
grep -q CKR_TOKEN_NOT_RECOGNIZED "$W/last.log" && ok "non-PIV card -> CKR_TOKEN_NOT_RECOGNIZED" || bad "non-PIV card error"
pkcs11-tool --module "$MODULE" -T >"$W/T.txt" 2>&1
[ "$(grep -c 'token label' "$W/T.txt")" = 1 ] && ok "slots with a token: only the PIV card (after the non-PIV card was tried)" ||
  { cp "$W/T.txt" "$W/last.log"; bad "non-PIV card listed as a token"; }
pcsc_card_stop 1 || bad "non-PIV card removal"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
