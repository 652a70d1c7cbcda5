#!/bin/bash
# Provisions one Vagrant box (or any fresh VM with the repository at
# $PORTICO_SRC, default /portico): installs the portico binary built on the
# host, gives the box the firewall its distribution usually runs, applies one
# seed playbook, and runs tests/e2e/assert.sh on it.
#
#   provision.sh [self-signed|mtls|letsencrypt|oauth2]
#
# letsencrypt and oauth2 need ACME_DIRECTORY (a directory URL the box can
# reach and that can reach the box), optionally ACME_CA_ROOT (the ACME
# server's HTTPS root, a path in the box) and CA_FILE (the root that issued
# certificates chain to, for the assertions).
set -euo pipefail
scenario=${1:-self-signed}
src=${PORTICO_SRC:-/portico}

die() { echo "provision: $*" >&2; exit 2; }

case $scenario in
self-signed) file=self-signed-proxy.toml ;;
mtls) file=mtls-api.toml ;;
letsencrypt) file=letsencrypt-reverse-proxy.toml ;;
oauth2) file=oauth2-internal-services.toml ;;
*) die "unknown scenario '$scenario' (self-signed, mtls, letsencrypt, oauth2)" ;;
esac
# The shipped binary (glibc 2.17, what tests/run builds and the packages
# carry) when there is one, else a plain `cargo build --release`.
bin=$src/target/x86_64-unknown-linux-gnu/release/portico
[ -x "$bin" ] || bin=$src/target/release/portico
[ -x "$bin" ] ||
    die "no portico binary under $src/target: run 'cargo build --release' on the host first"
[ -r /etc/os-release ] || die "no /etc/os-release: not a distribution portico knows"
# shellcheck disable=SC1091
. /etc/os-release

install -m 0755 "$bin" /usr/local/bin/portico

# The tools the assertions use, and the firewall the distribution ships with.
case "$ID" in
debian | ubuntu)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -q curl openssl testssl.sh
    if [ "$ID" = ubuntu ]; then
        apt-get install -y -q ufw
        ufw allow 22/tcp
        ufw --force enable
    else
        apt-get install -y -q iptables
        iptables -C INPUT -i lo -j ACCEPT 2>/dev/null || iptables -A INPUT -i lo -j ACCEPT
        iptables -C INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT 2>/dev/null ||
            iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
        iptables -C INPUT -p tcp --dport 22 -j ACCEPT 2>/dev/null ||
            iptables -A INPUT -p tcp --dport 22 -j ACCEPT
        iptables -P INPUT DROP
    fi
    ;;
centos | rocky | almalinux | rhel)
    pm=dnf
    command -v dnf >/dev/null || pm=yum
    if [ "${VERSION_ID%%.*}" = 7 ]; then
        # CentOS 7 is past its end of life: its mirrors are gone. The
        # operator names the archive mirrors to use (portico names none).
        if [ -z "${CENTOS7_MIRROR:-}" ] || [ -z "${EPEL7_MIRROR:-}" ]; then
            die "CentOS 7's mirrors are gone: set CENTOS7_MIRROR (an archive of CentOS 7: the URL that replaces http://HOST/ in the baseurl lines of the box's repo files) and EPEL7_MIRROR (the URL of the EPEL 7 archive that holds x86_64/)"
        fi
        sed -i -e 's/^mirrorlist=/#mirrorlist=/' \
            -e "s|^#\\?baseurl=http://[^/]*/|baseurl=${CENTOS7_MIRROR%/}/|" \
            /etc/yum.repos.d/CentOS-*.repo
        yum install -y -q epel-release
        sed -i -e 's/^metalink=/#metalink=/' \
            -e "s|^#\\?baseurl=.*/pub/epel/7/|baseurl=${EPEL7_MIRROR%/}/|" \
            /etc/yum.repos.d/epel*.repo
    else
        $pm install -y -q epel-release
    fi
    $pm install -y -q curl openssl firewalld ||
        die "could not install curl, openssl and firewalld with $pm"
    $pm install -y -q testssl ||
        die "testssl is not in EPEL for $PRETTY_NAME; install testssl.sh 3.0.8 by hand (tests/e2e/assert.sh needs it)"
    systemctl enable --now firewalld
    ;;
*) die "$PRETTY_NAME is not a distribution portico supports" ;;
esac

# The playbook, pointed at the given ACME server where it has one.
playbook=/root/$file
if grep -q '^\[acme\]' "$src/playbooks/$file"; then
    [ -n "${ACME_DIRECTORY:-}" ] ||
        die "$scenario needs ACME_DIRECTORY: Let's Encrypt cannot reach a Vagrant box (see vagrant/README.md)"
    awk -v dir="$ACME_DIRECTORY" -v root="${ACME_CA_ROOT:-}" '
        /^directory *=/ { next }
        { print }
        /^\[acme\]/ { print "directory = \"" dir "\""; if (root != "") print "ca_root = \"" root "\"" }
    ' "$src/playbooks/$file" >"$playbook"
else
    cp "$src/playbooks/$file" "$playbook"
fi

# The scenario named is what this machine is for: it replaces another one.
portico apply --replace "$playbook"
bash "$src/tests/e2e/assert.sh" "$scenario" "$playbook"
