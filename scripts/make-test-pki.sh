#!/usr/bin/env bash
# scripts/make-test-pki.sh OUTDIR — a throw-away test PKI for the virtual PIV card.
#
# Writes OUTDIR/ca.key.pem + OUTDIR/ca.cert.pem (RSA-2048 CA, "dcred test CA") and, for each
# PIV slot, OUTDIR/<slot>.key.pem (PKCS#8 PEM) and OUTDIR/<slot>.cert.pem signed by the CA:
#   9a RSA-2048  PIV Authentication           9c P-256  Digital Signature
#   9d RSA-2048  Key Management               9e P-256  Card Authentication
#   82 RSA-2048  Retired Key Management 1     83 P-384  Retired Key Management 2
# Subjects are "CN=dcred test <slot>". Test material only: the keys are not protected.
set -euo pipefail
out=${1:?usage: make-test-pki.sh OUTDIR}
command -v openssl >/dev/null || { echo "make-test-pki.sh: openssl is required" >&2; exit 1; }
mkdir -p "$out"
cd "$out"
umask 077

genkey() { # genkey FILE rsa2048|p256|p384
  case $2 in
    rsa2048) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
    p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" ;;
  esac
}

genkey ca.key.pem rsa2048
openssl req -new -x509 -key ca.key.pem -subj "/CN=dcred test CA" -days 3650 -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.cert.pem

leaf() { # leaf SLOT ALG KEYUSAGE
  local slot=$1 ext
  genkey "$slot.key.pem" "$2"
  ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,%s\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$3" >"$ext"
  openssl req -new -key "$slot.key.pem" -subj "/CN=dcred test $slot" -out "$slot.csr.pem"
  openssl x509 -req -in "$slot.csr.pem" -CA ca.cert.pem -CAkey ca.key.pem \
    -set_serial "0x$(openssl rand -hex 8)" -days 3650 -sha256 -extfile "$ext" \
    -out "$slot.cert.pem" 2>/dev/null
  rm -f "$ext" "$slot.csr.pem"
}

leaf 9a rsa2048 digitalSignature
leaf 9c p256 digitalSignature,nonRepudiation
leaf 9d rsa2048 keyEncipherment
leaf 9e p256 digitalSignature
leaf 82 rsa2048 keyEncipherment
leaf 83 p384 keyAgreement
chmod 0644 ./*.cert.pem
echo "make-test-pki.sh: wrote ca.{key,cert}.pem and {9a,9c,9d,9e,82,83}.{key,cert}.pem in $out"
