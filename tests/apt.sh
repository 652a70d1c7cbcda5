# shellcheck shell=bash
# Installing what the tests need, with apt, the way tests/run and
# tests/ansible/setup.sh both do it. Sourced; needs root.
#
#   apt_missing PKG...           -> prints the packages that are not installed
#   apt_install PKG...           -> installs them (services not started)
#   apt_install_from SUITE PKG...-> installs them with apt's target release
#                                   SUITE, adding SUITE's source first (its
#                                   mirror is the machine's own)
#
# Never names a mirror: a suite's source takes the URI the machine's own apt
# configuration uses for Debian (tests/machine/mirror.sh).

# shellcheck source-path=SCRIPTDIR source=machine/mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/machine/mirror.sh"

# Where packages are told not to start their services (nginx would bind :80
# on the test host). A variable so that a test can point it elsewhere.
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
APT_GET=${APT_GET:-apt-get}
_apt_updated=""
_apt_made_policy=""

apt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

apt_update_once() {
  [ -n "$_apt_updated" ] && return 0
  "$APT_GET" update -qq
  _apt_updated=1
}

# policy-rc.d says "no" to every service start for as long as an install
# runs, and goes away however the install ends: a failed install under
# `set -e`, or a signal, must not leave it behind (every later package
# upgrade on the host would then skip its restarts, exit 101).
_apt_policy_on() {
  [ -e "$POLICY_RC_D" ] && return 0
  printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC_D"
  chmod 755 "$POLICY_RC_D"
  _apt_made_policy=1
  trap _apt_policy_off EXIT
  trap '_apt_policy_off; exit 130' INT TERM HUP
}
_apt_policy_off() {
  if [ -n "$_apt_made_policy" ]; then
    rm -f "$POLICY_RC_D"
    _apt_made_policy=""
  fi
  trap - EXIT INT TERM HUP
}

# apt_install [-t SUITE] PKG...: prints apt's own error and returns non-zero
# when the set cannot be installed.
apt_install() {
  local target=()
  if [ "${1:-}" = -t ]; then
    target=(-t "$2")
    shift 2
  fi
  [ $# -gt 0 ] || return 0
  apt_update_once
  _apt_policy_on
  local rc=0
  DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -qq --no-install-recommends "${target[@]}" "$@" \
    >/dev/null || rc=$?
  _apt_policy_off
  return $rc
}

# apt_suite_source SUITE: makes sure apt knows SUITE (bookworm-backports,
# say), from the machine's own Debian mirror. The file it writes is the
# project's: /etc/apt/sources.list.d/portico-tests-SUITE.sources.
apt_suite_source() {
  local suite=$1 mirror file
  if apt-cache policy 2>/dev/null | grep -q " $suite/main "; then
    return 0
  fi
  mirror=$(debian_mirror) || return 1
  file=/etc/apt/sources.list.d/portico-tests-$suite.sources
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$suite" >"$file"
  _apt_updated=""
  apt_update_once
}

apt_install_from() {
  local suite=$1
  shift
  apt_suite_source "$suite" || return 1
  apt_install -t "$suite" "$@"
}
