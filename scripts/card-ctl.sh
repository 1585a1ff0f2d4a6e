#!/usr/bin/env bash
# scripts/card-ctl.sh remove|insert SLOT STATEFILE [COUNTFILE]
# Remove or insert a piv-sim card in an environment started by pcsc_env_start
# (found through $PCSC_ENV_DIR/pcsc.pids), for tests that run outside that shell.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/pcsc-env.sh"
op=${1:?usage: card-ctl.sh remove|insert SLOT STATEFILE [COUNTFILE]} slot=${2:?SLOT}
: "${PCSC_ENV_DIR:?PCSC_ENV_DIR must name the running environment}"
while read -r name pid; do
  case $name in
    pcscd) PCSCD_PID=$pid ;;
    "card$slot") PCSC_CARD_PIDS[slot]=$pid ;;
  esac
done <"$PCSC_ENV_DIR/pcsc.pids"
case $op in
  remove) pcsc_card_stop "$slot" ;;
  insert) pcsc_card_start "$slot" "${3:?STATEFILE}" "${4:-}" ;;
  *) echo "card-ctl.sh: unknown operation $op" >&2; exit 2 ;;
esac
