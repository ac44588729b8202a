#!/usr/bin/env bash
# Installs Debian packages the test and benchmark set-up need when the machine lacks them:
#   scripts/install-debian-package.sh chromium   (browser tests: Playwright drives it via executable_path)
#   scripts/install-debian-package.sh wrk        (bench/learner.py)
#   scripts/install-debian-package.sh redis-server  (tests/jobs/test_redis_queue.py starts its own)
set -euo pipefail
package="$1"
if command -v "$package" >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "$package" >/dev/null
command -v "$package"
