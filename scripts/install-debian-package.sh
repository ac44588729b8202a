#!/usr/bin/env bash
# Installs Debian packages the app, test and benchmark set-up need when the machine lacks them:
#   scripts/install-debian-package.sh chromium   (browser tests: Playwright drives it via executable_path)
#   scripts/install-debian-package.sh wrk        (bench/learner.py)
#   scripts/install-debian-package.sh redis-server  (tests/jobs/test_redis_queue.py starts its own)
#   scripts/install-debian-package.sh libpango-1.0-0 libpangoft2-1.0-0  (WeasyPrint: the PDF export)
#   scripts/install-debian-package.sh poppler-utils  (pdftoppm, to look at an exported PDF's pages)
# A package counts as present when a command of its name exists or dpkg reports it installed (libraries
# have no command); only the missing ones are installed.
set -euo pipefail
missing=()
for package in "$@"; do
  if command -v "$package" >/dev/null 2>&1; then continue; fi
  if dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'; then continue; fi
  missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
for package in "${missing[@]}"; do
  dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'
done
