#!/usr/bin/env bash
# scripts/demo.sh — the README's demo. Run as root on Debian 12.
# Builds the module, the virtual PIV card, the back-end and the CLI; starts pcscd with the
# card in a virtual reader and shows pkcs11-tool listing, signing and decrypting through
# libdcred_pkcs11.so; then enrolls a derived credential from the card with the back-end on
# loopback and signs and decrypts with it through the same module. openssl checks every
# result. Everything it starts is stopped by PID at exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/pcsc-env.sh
for p in pkg-config libpcsclite-dev libsqlite3-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pkg-config libpcsclite-dev libsqlite3-dev >/dev/null; break; }
done
pcsc_env_install
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build the module, the virtual card, the back-end and the CLI"
cargo build -q -p dcred-pkcs11 -p piv-sim -p dcred-backend -p dcred-cli
BIN=$ROOT/target/debug
MODULE=$BIN/libdcred_pkcs11.so
W=$(mktemp -d /tmp/dcred-demo.XXXXXX)
BACKEND_PID=
trap '[ -n "$BACKEND_PID" ] && kill "$BACKEND_PID" 2>/dev/null; pcsc_env_stop; rm -rf "$W"' EXIT
export DCRED_DATA_DIR=$W/data

step "make a test PKI and provision a virtual PIV card (PIN 123456)"
bash scripts/make-test-pki.sh "$W/pki"
args=(); for s in 9a 9c 9d 9e 82 83; do args+=(--slot "$s" --key "$W/pki/$s.key.pem" --cert "$W/pki/$s.cert.pem"); done
"$PIV_SIM" provision --state "$W/card.json" "${args[@]}"

step "start pcscd (vpcd reader, private network namespace) and insert the card"
pcsc_env_start "$W/env"
pcsc_card_start 0 "$W/card.json" "$W/apdus"
P11=(pkcs11-tool --module "$MODULE")

step "pkcs11-tool -L: slots and tokens"
"${P11[@]}" -L

step "pkcs11-tool -O: objects readable without the PIN"
"${P11[@]}" -O | grep -E "Object|label|ID:"

step "sign with the PIV Authentication key (9A, SHA256-RSA-PKCS) and verify with openssl"
echo "dcred demo $(date)" >"$W/msg"
"${P11[@]}" --login --pin 123456 --sign -m SHA256-RSA-PKCS --id 01 -i "$W/msg" -o "$W/sig"
openssl dgst -sha256 -verify <(openssl x509 -in "$W/pki/9a.cert.pem" -pubkey -noout) -signature "$W/sig" "$W/msg"

step "sign with the Digital Signature key (9C, ECDSA P-256, PIN asked again for each use)"
"${P11[@]}" --login --pin 123456 --sign -m ECDSA-SHA256 --id 02 -i "$W/msg" -o "$W/sig2" --signature-format openssl
openssl dgst -sha256 -verify <(openssl x509 -in "$W/pki/9c.cert.pem" -pubkey -noout) -signature "$W/sig2" "$W/msg"

step "openssl encrypts to the Key Management certificate (9D, OAEP SHA-256); the card decrypts"
head -c 32 /dev/urandom | base64 >"$W/secret"
openssl pkeyutl -encrypt -pubin -inkey <(openssl x509 -in "$W/pki/9d.cert.pem" -pubkey -noout) \
  -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$W/secret" -out "$W/enc"
"${P11[@]}" --login --pin 123456 --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
  --id 03 -i "$W/enc" -o "$W/dec"
cmp "$W/secret" "$W/dec" && echo "decrypted: $(cat "$W/dec")"

step "derived credential: start the back-end (trusts the card's CA; escrows the 9D key)"
"$BIN/dcred-backend" init --data "$W/backend" --piv-anchor "$W/pki/ca.cert.pem"
"$BIN/dcred-backend" escrow import --data "$W/backend" --user "$W/pki/9a.cert.pem" --cert "$W/pki/9d.cert.pem" --key "$W/pki/9d.key.pem"
"$BIN/dcred-backend" serve --data "$W/backend" --listen 127.0.0.1:0 >"$W/backend.log" 2>&1 &
BACKEND_PID=$!
for _ in $(seq 50); do grep -q "listening on" "$W/backend.log" && break; sleep 0.1; done
ADDR=$(sed -n 's/.*listening on //p' "$W/backend.log")
echo "back-end listening on $ADDR"

step "dcred enroll: the card proves possession, the derived credential is stored (derived PIN 24681357)"
printf '123456\n' >"$W/cardpin"; printf '24681357\n' >"$W/pin"
"$BIN/dcred" enroll --backend "$ADDR" --trust-anchor "$W/backend/tls-ca.cert.pem" --module "$MODULE" \
  --card-pin-file "$W/cardpin" --pin-file "$W/pin" --iterations 100000
"$BIN/dcred" list

step "pkcs11-tool -L: the card's slot and the derived credential's slot side by side"
"${P11[@]}" -L
D=("${P11[@]}" --token-label "dcred test 9a (derived)" --login --pin 24681357)

step "sign with the derived authentication key (activation with the back-end at login)"
"${D[@]}" --sign -m ECDSA-SHA256 --id 01 -i "$W/msg" -o "$W/dsig" --signature-format openssl
"${D[@]}" --read-object --type cert --id 01 -o "$W/dauth.der" >/dev/null
openssl dgst -sha256 -verify <(openssl x509 -inform DER -in "$W/dauth.der" -pubkey -noout) -signature "$W/dsig" "$W/msg"
openssl x509 -inform DER -in "$W/dauth.der" -noout -subject -issuer

step "decrypt with the escrowed key-management key in the derived slot"
openssl pkeyutl -encrypt -pubin -inkey <(openssl x509 -in "$W/pki/9d.cert.pem" -pubkey -noout) -in "$W/secret" -out "$W/enc2"
"${D[@]}" --decrypt -m RSA-PKCS --id 03 -i "$W/enc2" -o "$W/dec2"
cmp "$W/secret" "$W/dec2" && echo "decrypted: $(cat "$W/dec2")"

step "the card answered $(cat "$W/apdus") APDUs in all"
"$BIN/dcred-backend" audit --data "$W/backend"
echo "demo finished"
