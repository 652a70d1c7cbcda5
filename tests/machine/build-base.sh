#!/usr/bin/env bash
# Builds (once) the pristine Debian bookworm rootfs the booted-machine tests
# copy for every fresh machine: systemd + D-Bus, and an offline apt repository
# at /srv/repo holding what the tests install inside (nginx, firewalls, curl),
# because inside --private-network there is only loopback.
#
#   tests/machine/build-base.sh CACHE_DIR     -> CACHE_DIR/base (reused when complete)
set -euo pipefail
cache=${1:?usage: build-base.sh CACHE_DIR}
base="$cache/base"
stamp="$base/.portico-base-v10"
[ -e "$stamp" ] && exit 0

# The mirror the host itself uses (never hard-coded).
# shellcheck source-path=SCRIPTDIR source=mirror.sh
. "$(dirname "$0")/mirror.sh"
mirror=$(debian_mirror)

rm -rf "$base" "$base.tmp"
mkdir -p "$cache"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,iproute2,ca-certificates \
  bookworm "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
  { tail -20 "$cache/debootstrap.log" >&2; exit 1; }

# Packages the tests install inside the machine, downloaded with the host's
# network through a chroot, then served offline from /srv/repo.
# DNS-01: BIND serves the test zones (and answers pebble and portico), dig
# and nsupdate check and drive it; lego and certbot's rfc2136 plugin are
# the bench's anchors. man-db renders the packaged man pages.
# prometheus-node-exporter scrapes portico's metrics file (tests/metrics.rs).
PKGS="nginx ufw firewalld iptables nftables curl openssl procps testssl.sh pebble certbot uacme time bind9 bind9-dnsutils lego python3-certbot-dns-rfc2136 man-db prometheus-node-exporter"
# ufw Breaks iptables-persistent, so it cannot be resolved in the same set:
# a machine gets one or the other.
PERSISTENT="iptables-persistent netfilter-persistent"
cp /etc/resolv.conf "$base.tmp/etc/resolv.conf"
chroot "$base.tmp" apt-get update -qq
for set in "$PKGS" "$PERSISTENT"; do
  # shellcheck disable=SC2086 # a list: split on purpose
  chroot "$base.tmp" apt-get install -y -qq --download-only $set >/dev/null
done
mkdir -p "$base.tmp/srv/repo"
mv "$base.tmp"/var/cache/apt/archives/*.deb "$base.tmp/srv/repo/"
(cd "$base.tmp/srv/repo" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages)
echo 'deb [trusted=yes] file:/srv/repo ./' > "$base.tmp/etc/apt/sources.list"
rm -f "$base.tmp"/etc/apt/sources.list.d/*
rm -rf "$base.tmp"/var/lib/apt/lists/*
chroot "$base.tmp" apt-get update -qq
# The tests' own probes (curl, pgrep) are there from the start; what portico
# installs (nginx) and the firewalls stay in the repository only.
chroot "$base.tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl procps >/dev/null

# pebble with ACME Renewal Information (RFC 9773) for the ARI test: bookworm's
# 2.4 has none, trixie's 2.6 does (a static Go binary; needs libc6 >= 2.34).
# Kept beside the repository, not in it, so `apt-get install pebble` stays 2.4.
curl -fsS -o "$base.tmp/trixie-Packages.xz" "${mirror%/}/dists/trixie/main/binary-amd64/Packages.xz"
entry=$(xz -dc "$base.tmp/trixie-Packages.xz" |
  awk '/^Package: / {p = ($2 == "pebble")} p && /^(Filename|SHA256):/ {print $2}')
rm -f "$base.tmp/trixie-Packages.xz"
file=$(echo "$entry" | sed -n 1p)
sum=$(echo "$entry" | sed -n 2p)
if [ -z "$file" ] || [ -z "$sum" ]; then
  echo "build-base: no pebble in trixie's index at $mirror" >&2
  exit 1
fi
mkdir -p "$base.tmp/srv/extra"
curl -fsS -o "$base.tmp/srv/extra/pebble-ari.deb" "${mirror%/}/$file"
echo "$sum  $base.tmp/srv/extra/pebble-ari.deb" | sha256sum -c --quiet

# A quiet, fast boot: no getty on a console nobody reads.
chroot "$base.tmp" systemctl mask console-getty.service getty@tty1.service >/dev/null 2>&1 || true
echo portico-test > "$base.tmp/etc/hostname"
: > "$base.tmp/etc/machine-id"
touch "$base.tmp/.portico-base-v10"
mv "$base.tmp" "$base"
