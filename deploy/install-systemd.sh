#!/usr/bin/env bash
# Installs the polyhome server as a systemd service: the steps deploy/polyhome-server.service lists, in order.
#
#   sudo deploy/install-systemd.sh            # from a built repository (npm install && npm run build)
#   deploy/install-systemd.sh --root /tmp/x   # the same steps under a scratch root (no user, no systemctl)
#
# Node.js >= 22.19 must be at /opt/polyhome-node/bin/node first (the unit's ExecStart); Debian's nodejs is older:
#   curl -fsSLO https://nodejs.org/dist/v24.11.1/node-v24.11.1-linux-x64.tar.xz
#   sudo mkdir -p /opt/polyhome-node
#   sudo tar -xJf node-v24.11.1-linux-x64.tar.xz -C /opt/polyhome-node --strip-components=1
set -euo pipefail

ROOT=/
SRC=$(cd "$(dirname "$0")/.." && pwd)
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2; shift 2 ;;
    --source) SRC=$2; shift 2 ;;
    *) echo "install-systemd.sh: unknown argument $1; usage: install-systemd.sh [--root DIR] [--source REPO]" >&2; exit 2 ;;
  esac
done
R=${ROOT%/}
NODE=/opt/polyhome-node/bin/node

if [ ! -x "$R$NODE" ]; then
  echo "install-systemd.sh: no Node.js at $R$NODE; install Node >= 22.19 there first (see the top of this script)." >&2
  exit 1
fi
if ! "$R$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)'; then
  echo "install-systemd.sh: $R$NODE is Node $("$R$NODE" --version); the server needs >= 22.19." >&2
  exit 1
fi
if [ ! -f "$SRC/apps/server/dist/main.js" ]; then
  echo "install-systemd.sh: $SRC is not built; run npm install && npm run build there first." >&2
  exit 1
fi

# 1. The system user (only on the real root: useradd cannot make one in a scratch root).
if [ -z "$R" ] && ! id polyhome >/dev/null 2>&1; then
  useradd --system --home /var/lib/polyhome --shell /usr/sbin/nologin polyhome
fi
# 2. The application, in /opt/polyhome (the unit's WorkingDirectory).
install -d -m 0755 "$R/opt/polyhome"
cp -a "$SRC/." "$R/opt/polyhome/"
# 3. The configuration: /etc/polyhome, readable by root only (the env file may hold ADMIN_TOKEN, SEALING_KEY).
#    An existing server.env is kept: it holds your edits.
install -d -m 0700 "$R/etc/polyhome"
if [ ! -f "$R/etc/polyhome/server.env" ]; then
  install -m 0600 "$SRC/deploy/env.example" "$R/etc/polyhome/server.env"
fi
# 4. The unit. systemd makes /var/lib/polyhome itself (StateDirectory=, mode 0700, owned by the user).
install -d -m 0755 "$R/etc/systemd/system"
install -m 0644 "$SRC/deploy/polyhome-server.service" "$R/etc/systemd/system/polyhome-server.service"
if [ -z "$R" ]; then
  systemctl daemon-reload
  echo "Installed. Edit /etc/polyhome/server.env, then: systemctl enable --now polyhome-server"
else
  echo "Installed under $R (no user made, systemd not told)."
fi
