#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite:
#   Debian packages (SIPp, Mosquitto, espeak-ng, sox, Kamailio, Chromium and its driver for
#   the console's browser tests, a Chinese font for their screenshots, PostgreSQL for the
#   shared store's tests: started as the postgres user in a temporary directory) when missing,
#   a virtualenv in .venv with the pinned dependencies of pyproject.toml,
#   then pytest in two processes (pytest-xdist). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(sip-tester mosquitto espeak-ng sox libsox-fmt-mp3 kamailio chromium chromium-driver fonts-wqy-microhei postgresql)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# two test processes: most tests wait on calls in real time (SIPp, prompts), not on the CPU;
# the heaviest (xdist_group "heavy": several engines, floods) take turns in one of them
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
