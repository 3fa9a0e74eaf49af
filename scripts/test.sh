#!/usr/bin/env bash
# Install the test dependencies (apt packages, a virtualenv) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  postfix postfix-lmdb postfix-mysql dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve \
  dovecot-managesieved dovecot-mysql mariadb-server mariadb-client openssl ssl-cert \
  util-linux openssh-server python3-venv qemu-system-x86 qemu-utils mmdebstrap e2fsprogs dpkg-dev nix-bin \
  nsd bind9-utils rspamd redis-server clamav-daemon fail2ban nftables dovecot-pop3d postsrsd nginx certbot pebble \
  >/dev/null
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check .  # the lint rules are in pyproject.toml
set +e
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider --durations=30 tests
status=$?
set -e
if [ "$status" = 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit "$status"
