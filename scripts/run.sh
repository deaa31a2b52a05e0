#!/usr/bin/env bash
# `make run`: prepare the embedded instance (database, keys, demo data) and serve web + worker + beat under
# one foreground supervisor that restarts whichever process dies; Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export SYNTHEX_PORT="${PORT:-8000}"
export SYNTHEX_SITE_URL="${SYNTHEX_SITE_URL:-http://127.0.0.1:${SYNTHEX_PORT}}"
# Payments: real Stripe when STRIPE_SECRET_KEY is set; otherwise localstripe on loopback (port = web + 420)
# with a webhook signing secret kept in the var dir.
PROCESSES=""
if [ -z "${STRIPE_SECRET_KEY:-}" ]; then
  VAR="${SYNTHEX_VAR_DIR:-var}"; mkdir -p "$VAR"
  if [ -z "${STRIPE_WEBHOOK_SECRET:-}" ]; then
    [ -s "$VAR/stripe-webhook-secret" ] || (umask 077; $PY -c "import secrets; print('whsec_' + secrets.token_hex(24))" > "$VAR/stripe-webhook-secret")
    STRIPE_WEBHOOK_SECRET="$(cat "$VAR/stripe-webhook-secret")"
  fi
  export STRIPE_WEBHOOK_SECRET
  export STRIPE_LOCAL_PORT="${STRIPE_LOCAL_PORT:-$((SYNTHEX_PORT + 420))}"
  export STRIPE_API_BASE="http://127.0.0.1:${STRIPE_LOCAL_PORT}"
else
  PROCESSES="$(grep -oE '^[a-z_]+' Procfile | grep -vx localstripe | tr '\n' ' ')"
fi
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
# The supervisor restarts any process that dies (a killed worker does not take the site down) and stops them
# all on Ctrl-C (marketplace/core/supervisor.py).
# shellcheck disable=SC2086  # PROCESSES is a word list on purpose (empty: every process).
exec $PY -m marketplace.core.supervisor -f Procfile $PROCESSES
