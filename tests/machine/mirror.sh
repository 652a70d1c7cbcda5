# shellcheck shell=bash
# The Debian mirror the host itself uses (never hard-coded), for debootstrap
# and for downloading what offline machines install. Sourced by
# tests/machine/build-base.sh and vagrant/build-box.sh.
debian_mirror() {
  local m
  m=$(
    { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
      grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } |
    grep -v -- '-security' | grep -E 'debian/?$' | head -n1 || true
  )
  [ -n "$m" ] || { echo "no Debian mirror in the host's apt sources" >&2; return 1; }
  echo "$m"
}
