#!/usr/bin/env bash
# `make run`: prepare the embedded instance (database, keys, demo data) and serve web + worker in one
# foreground process group; Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export SYNTHEX_PORT="${PORT:-8000}"
export SYNTHEX_SITE_URL="${SYNTHEX_SITE_URL:-http://127.0.0.1:${SYNTHEX_PORT}}"
$PY manage.py migrate --no-input -v0
$PY manage.py prepare_instance
$PY manage.py seed_demo --if-empty
$PY manage.py collectstatic --no-input -v0
cat <<BANNER

  Synthex is starting on ${SYNTHEX_SITE_URL}
  Demo logins (password: ${SYNTHEX_DEMO_PASSWORD:-synthex-demo}):
    demo-provider  sells data for three provider organizations
    demo-buyer     buys and downloads
    demo-auditor   reads the ledger and audits
    demo-staff     moderates in the admin (${SYNTHEX_SITE_URL}/admin/)
  API docs: ${SYNTHEX_SITE_URL}/api/v1/docs/     Stop: Ctrl-C

BANNER
exec .venv/bin/honcho -f Procfile start
