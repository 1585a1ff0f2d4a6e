#!/usr/bin/env bash
# scripts/demo.sh — the README's demo. Run as root on Debian 12.
# Builds the module and the virtual PIV card, starts pcscd with the card in a virtual
# reader, and shows pkcs11-tool listing, signing and decrypting through libdcred_pkcs11.so,
# with openssl checking every result. Everything it starts is stopped by PID at exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/pcsc-env.sh
for p in pkg-config libpcsclite-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pkg-config libpcsclite-dev >/dev/null; break; }
done
pcsc_env_install
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "build the module and the virtual card"
cargo build -q -p dcred-pkcs11 -p piv-sim
MODULE=$ROOT/target/debug/libdcred_pkcs11.so
W=$(mktemp -d /tmp/dcred-demo.XXXXXX)
trap 'pcsc_env_stop; rm -rf "$W"' EXIT

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

step "the card answered $(cat "$W/apdus") APDUs in all"
echo "demo finished: the derived-credential slot joins this demo with the back-end (issue 3)"
