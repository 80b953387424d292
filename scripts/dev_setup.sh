#!/usr/bin/env bash
# Installs what the test suite needs: a virtualenv with requirements-dev.txt, Debian's chromium for the web UI
# test and espeak-ng for rendering spoken questions (installed with apt-get when missing and possible; otherwise
# the tests that need them are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's ${missing[*]} (the web UI test's browser, the spoken questions' synthesizer) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed (sudo apt-get install ${missing[*]}); the tests that need them skip" >&2
  fi
fi
