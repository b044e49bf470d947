#!/usr/bin/env bash
# System packages the test suite needs: Chromium (browser tests), RabbitMQ
# (broker tests), PostgreSQL (history store tests; the suite runs its own
# throwaway cluster) and Node.js (the client module's unit tests, node --test).
# Installed with apt-get where it exists; elsewhere this says what to install,
# and the tests that need them fail until then.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 || missing+=(postgresql)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  cat >&2 <<MSG
healthmon tests need: ${missing[*]}
  macOS:  brew install rabbitmq node postgresql   (rabbitmq-server, node, initdb and pg_ctl on PATH)
          .venv/bin/playwright install chromium   (used when /usr/bin/chromium is absent)
  other:  install them with your package manager.
MSG
fi
