#!/usr/bin/env bash
# The robustness check for the timing-sensitive tests: pytest, every demobot and every Locust process squeezed
# onto one CPU core (taskset), as on a machine several times slower and busy with other work. Runs the tests
# marked "timing" (they compare measured times with a known truth) and "startup" (they need processes to start
# and reach the target before a short run ends), one at a time. Extra arguments go to pytest.
#   bash scripts/squeeze_tests.sh              # all of them, about 6 minutes here
#   bash scripts/squeeze_tests.sh -k pid       # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
exec taskset -c "${SQUEEZE_CORE:-0}" .venv/bin/pytest -n 0 -m "timing or startup" "$@"
