#!/usr/bin/env bash
# Installs the engine and runs the demo: the engine calling simulated phones on loopback (no
# external server needed). espeak-ng and sox make the voice prompts; kamailio is the SIP front
# that `run` starts in front of the workers (sip.balancer in sip_config/dialer.yaml).
# Extra arguments go to run_dialer.py (default: demo; `run` is the engine itself).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in espeak-ng sox libsox-fmt-mp3 kamailio; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
  # Debian starts its own kamailio service on install (all addresses, port 5060); the engine runs
  # the front itself, so a service installed just now is stopped and disabled
  if [[ " ${missing[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null 2>&1 \
      && systemctl is-active --quiet kamailio 2>/dev/null; then
    $sudo systemctl disable --now kamailio >/dev/null 2>&1 || true
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/python run_dialer.py "${@:-demo}"
