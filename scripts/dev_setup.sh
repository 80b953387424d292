#!/usr/bin/env bash
# Installs what the test suite needs: a virtualenv with requirements-dev.txt, Debian's chromium for the web UI
# test and espeak-ng for rendering spoken questions (installed with apt-get when missing and possible; otherwise
# the tests that need them are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the web UI test ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed (sudo apt-get install chromium); the web UI test will be skipped" >&2
  fi
fi
if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's espeak-ng for the spoken questions (create_test_data.py --voice) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "note: espeak-ng is not installed (sudo apt-get install espeak-ng); rendering voices will be skipped" >&2
  fi
fi
