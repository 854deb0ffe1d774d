#!/usr/bin/env bash
# Installs the programs the tests drive besides Node: Nginx (the front door), docker-compose
# (only its `config` validator runs; no Docker engine is needed) and Chromium (the browser tests,
# driven by playwright-core at /usr/bin/chromium). As root on Debian/Ubuntu they come from apt-get;
# elsewhere this says what to install.
set -euo pipefail

say() { printf '[tools] %s\n' "$*"; }

packages=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
command -v docker-compose >/dev/null 2>&1 || packages+=(docker-compose)
[ -x /usr/bin/chromium ] || packages+=(chromium)

if [ ${#packages[@]} -eq 0 ]; then
  say "nginx, docker-compose and chromium are installed"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing ${packages[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  # The Debian package may start a system Nginx on port 80; the tests run their own.
  if [ -x /usr/sbin/nginx ] && pgrep -x nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then
    /usr/sbin/nginx -s quit 2>/dev/null || true
  fi
  say "installed ${packages[*]}"
else
  say "missing: ${packages[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${packages[*]}; macOS: brew install nginx docker-compose chromium) and run again."
  exit 1
fi
