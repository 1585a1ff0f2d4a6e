#!/usr/bin/env bash
# softhsm-fixtures/make-tokens.sh OUTDIR — SoftHSMv2 token holding the back-end's keys.
#
# Creates OUTDIR/softhsm2.conf (its own token directory, nothing system-wide), an empty
# token "dcred-backend" (user PIN 1234, SO PIN 5678), and OUTDIR/env.sh exporting
# SOFTHSM2_CONF and three RFC 7512 URIs (DCRED_HSM_MASTER_URI, DCRED_HSM_MAC_URI,
# DCRED_HSM_CA_URI) naming the objects `dcred-backend init` creates in that token when
# they are missing: master (AES-256, CKM_AES_GCM), mac (generic secret with CKA_SIGN,
# CKM_SHA256_HMAC) and ca (EC P-256 key pair, CKM_ECDSA_SHA256). Every key is generated
# inside the token, sensitive and not extractable.
# Installs softhsm2 when missing. Test material only.
set -euo pipefail
out=${1:?usage: make-tokens.sh OUTDIR}
miss=(); for p in softhsm2; do dpkg -s "$p" >/dev/null 2>&1 || miss+=("$p"); done
if [ ${#miss[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${miss[@]}" >/dev/null
fi
mkdir -p "$out/tokens"
out=$(cd "$out" && pwd)
module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
[ -n "$module" ] || { echo "make-tokens.sh: libsofthsm2.so not found" >&2; exit 1; }
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$out" >"$out/softhsm2.conf"
export SOFTHSM2_CONF=$out/softhsm2.conf
softhsm2-util --init-token --free --label dcred-backend --pin 1234 --so-pin 5678 >/dev/null
uri() { echo "pkcs11:token=dcred-backend;object=$1?module-path=$module&pin-value=1234"; }
cat >"$out/env.sh" <<ENV
export SOFTHSM2_CONF=$out/softhsm2.conf
export DCRED_HSM_MASTER_URI='$(uri master)'
export DCRED_HSM_MAC_URI='$(uri mac)'
export DCRED_HSM_CA_URI='$(uri ca)'
ENV
echo "make-tokens.sh: token dcred-backend in $out (source $out/env.sh)"
