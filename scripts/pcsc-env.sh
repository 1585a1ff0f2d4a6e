# shellcheck shell=bash
# scripts/pcsc-env.sh — a real PC/SC stack for tests, without systemd or hardware.
#
# Source it from a bash test script:
#   . scripts/pcsc-env.sh
#   pcsc_env_install                      # apt-get what is missing (root)
#   pcsc_env_start "$W"                   # pcscd + vpcd reader in its own network namespace
#   pcsc_card_start 0 "$W/card.json" [COUNTFILE]   # piv-sim inserted in reader slot 0
#   ...  opensc-tool / pkcs11-tool / yubico-piv-tool / the dcred module talk to the card ...
#   pcsc_card_stop 0                      # card removed
#   pcsc_env_stop                         # kill everything this file started
#
# pcscd (1.9.9) always uses /run/pcscd/pcscd.comm, so there is one pcscd per machine:
# pcsc_env_start refuses to run when another pcscd is up. vpcd listens on 0.0.0.0:35963 and
# :35964 (reader slots 0 and 1); pcscd runs inside `unshare -n` so that those ports exist
# only on that namespace's loopback, and the cards join it with `nsenter -t PID -n`.
# Clients reach pcscd through the unix socket as usual.
#
# Variables: PIV_SIM (the piv-sim binary; default <repo>/target/debug/piv-sim),
# PCSCD_PID, PCSC_CARD_PIDS (array indexed by slot), PCSC_ENV_DIR. PIDs are also written
# to $PCSC_ENV_DIR/pcsc.pids so an EXIT trap can call pcsc_env_stop even from a subshell.
# Nothing is ever killed by name: only the PIDs recorded here.

PCSC_ENV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PIV_SIM:=${CARGO_TARGET_DIR:-$PCSC_ENV_ROOT/target}/debug/piv-sim}"
PCSCD_PID=${PCSCD_PID:-}
PCSC_ENV_DIR=${PCSC_ENV_DIR:-}
declare -a PCSC_CARD_PIDS=()

pcsc_env_install() {
  local miss=() p
  for p in pcscd vsmartcard-vpcd opensc yubico-piv-tool libpcsclite-dev iproute2 util-linux openssl; do
    dpkg -s "$p" >/dev/null 2>&1 || miss+=("$p")
  done
  [ ${#miss[@]} -eq 0 ] && return 0
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "INFO installing ${miss[*]}" >&2
  $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${miss[@]}" >/dev/null
}

# _pcsc_record NAME PID: remember a PID in the work dir for pcsc_env_stop / EXIT traps.
_pcsc_record() {
  [ -n "$PCSC_ENV_DIR" ] && echo "$1 $2" >>"$PCSC_ENV_DIR/pcsc.pids"
  return 0
}

# _pcsc_reader_has_card SLOT Yes|No: does `opensc-tool -l` show reader SLOT in that state?
_pcsc_reader_has_card() {
  opensc-tool -l 2>/dev/null | grep -q "^$1 *$2 "
}

# pcsc_wait_card SLOT Yes|No [TRIES]: poll every 0.2 s (default 50 tries = 10 s).
pcsc_wait_card() {
  local i
  for ((i = 0; i < ${3:-50}; i++)); do
    _pcsc_reader_has_card "$1" "$2" && return 0
    sleep 0.2
  done
  return 1
}

# pcsc_env_start WORKDIR: start pcscd (vpcd reader only) in a private network namespace.
pcsc_env_start() {
  local dir=${1:?usage: pcsc_env_start WORKDIR}
  [ "$(id -u)" = 0 ] || { echo "pcsc_env_start: must run as root (unshare -n, /run/pcscd)" >&2; return 1; }
  local other
  other=$(pidof pcscd 2>/dev/null || true)
  if [ -n "$other" ]; then
    echo "pcsc_env_start: a pcscd is already running (pid $other); stop it first" >&2
    return 1
  fi
  mkdir -p "$dir/reader.conf.d"
  PCSC_ENV_DIR=$(cd "$dir" && pwd)
  cp /etc/reader.conf.d/vpcd "$PCSC_ENV_DIR/reader.conf.d/vpcd"
  : >"$PCSC_ENV_DIR/pcsc.pids"
  # unshare execs sh, which execs pcscd: $! is pcscd's PID.
  # shellcheck disable=SC2016 # $1 is expanded by the inner sh
  unshare -n sh -c 'ip link set lo up && exec pcscd --foreground --apdu -c "$1"' sh \
    "$PCSC_ENV_DIR/reader.conf.d" >"$PCSC_ENV_DIR/pcscd.log" 2>&1 &
  PCSCD_PID=$!
  _pcsc_record pcscd "$PCSCD_PID"
  local i
  for ((i = 0; i < 50; i++)); do
    if ! kill -0 "$PCSCD_PID" 2>/dev/null; then
      echo "pcsc_env_start: pcscd exited; log:" >&2
      tail -5 "$PCSC_ENV_DIR/pcscd.log" >&2
      PCSCD_PID=
      return 1
    fi
    if [ -S /run/pcscd/pcscd.comm ] && opensc-tool -l 2>/dev/null | grep -q "Virtual PCD"; then
      return 0
    fi
    sleep 0.2
  done
  echo "pcsc_env_start: pcscd did not answer within 10 s" >&2
  return 1
}

# pcsc_card_start SLOTNUM STATEFILE [COUNTFILE]: insert a piv-sim card in reader SLOTNUM.
pcsc_card_start() {
  local slot=${1:?usage: pcsc_card_start SLOTNUM STATEFILE [COUNTFILE]} state=${2:?STATEFILE}
  local count=${3:-}
  [ -n "$PCSCD_PID" ] || { echo "pcsc_card_start: pcscd not started" >&2; return 1; }
  [ -x "$PIV_SIM" ] || { echo "pcsc_card_start: $PIV_SIM is missing (cargo build -p piv-sim)" >&2; return 1; }
  local args=(run --state "$state" --port $((35963 + slot)))
  [ -n "$count" ] && args+=(--count-file "$count")
  # shellcheck disable=SC2206 # extra piv-sim options, e.g. PCSC_CARD_EXTRA_ARGS="--stall-ins 87"
  args+=(${PCSC_CARD_EXTRA_ARGS:-})
  # nsenter execs piv-sim after joining the namespace: $! is piv-sim's PID.
  nsenter -t "$PCSCD_PID" -n "$PIV_SIM" "${args[@]}" >>"$PCSC_ENV_DIR/card$slot.log" 2>&1 &
  PCSC_CARD_PIDS[slot]=$!
  _pcsc_record "card$slot" "${PCSC_CARD_PIDS[slot]}"
  if ! pcsc_wait_card "$slot" Yes; then
    echo "pcsc_card_start: card not seen in reader $slot; log:" >&2
    tail -5 "$PCSC_ENV_DIR/card$slot.log" >&2
    return 1
  fi
}

# pcsc_card_stop SLOTNUM: remove the card (stop its process) and wait until pcscd sees it.
pcsc_card_stop() {
  local slot=${1:?usage: pcsc_card_stop SLOTNUM} pid=${PCSC_CARD_PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  PCSC_CARD_PIDS[slot]=
  [ -n "$PCSC_ENV_DIR" ] && sed -i "/^card$slot /d" "$PCSC_ENV_DIR/pcsc.pids"
  pcsc_wait_card "$slot" No
}

_pcsc_any_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

# pcsc_env_stop: stop every card and pcscd started here (from the arrays and the pid file).
pcsc_env_stop() {
  local pids=() pid
  for pid in "${PCSC_CARD_PIDS[@]}"; do [ -n "$pid" ] && pids+=("$pid"); done
  if [ -n "$PCSC_ENV_DIR" ] && [ -f "$PCSC_ENV_DIR/pcsc.pids" ]; then
    while read -r _ pid; do [ -n "$pid" ] && pids+=("$pid"); done <"$PCSC_ENV_DIR/pcsc.pids"
  fi
  [ -n "$PCSCD_PID" ] && pids+=("$PCSCD_PID")
  [ ${#pids[@]} -eq 0 ] && return 0
  kill "${pids[@]}" 2>/dev/null
  local i
  for ((i = 0; i < 50; i++)); do
    _pcsc_any_alive "${pids[@]}" || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  wait "${pids[@]}" 2>/dev/null
  PCSC_CARD_PIDS=()
  PCSCD_PID=
  [ -n "$PCSC_ENV_DIR" ] && : >"$PCSC_ENV_DIR/pcsc.pids"
  return 0
}
