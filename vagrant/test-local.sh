#!/usr/bin/env bash
# `vagrant up` for real on this host, without hardware virtualization: builds
# (once) the local Debian 12 box (build-box.sh), starts its own libvirtd in a
# private network namespace, brings up the `debian12-local` machine with the
# vagrant-libvirt provider under plain QEMU emulation, provisions it with the
# seed scenarios (provision.sh runs tests/e2e/assert.sh inside the VM), then
# destroys it and stops what it started.
#
#   vagrant/test-local.sh [SCENARIO...]     default: self-signed mtls
#
# Needs root and Debian's vagrant, vagrant-libvirt, libvirt-daemon-system,
# qemu-system-x86 (the same version line as qemu-utils), dnsmasq-base,
# debootstrap, fdisk and qemu-utils (tests/run installs them), and the
# release binary (cargo build --release). Prints the wall time of each phase.
# Traffic stays inside the namespace: libvirt's network there forwards
# nowhere, and the VM installs from the box's offline repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PORTICO_VAGRANT_CACHE:-/var/cache/portico-tests/vagrant}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(self-signed mtls)
machine=debian12-local
ns=portico-vagrant

die() { echo "test-local: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (libvirtd, a network namespace): sudo $0"
for tool in vagrant libvirtd virtlogd virsh qemu-system-x86_64 dnsmasq ip; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing: apt-get install vagrant vagrant-libvirt libvirt-daemon-system qemu-system-x86 dnsmasq-base iproute2 (tests/run does)"
done
[ -x "$here/../target/x86_64-unknown-linux-gnu/release/portico" ] || [ -x "$here/../target/release/portico" ] ||
  die "no portico binary: cargo build --release first (tests/run builds the shipped one)"
if virsh -c qemu:///system version >/dev/null 2>&1; then
  die "a libvirtd already answers on qemu:///system; this script starts its own in a private network namespace: stop the other first"
fi

phase_start=$SECONDS
phase() { # NAME: prints the time since the previous phase
  printf 'test-local: %-28s %4ss\n' "$1" "$((SECONDS - phase_start))"
  phase_start=$SECONDS
}

mkdir -p "$cache"
box=$("$here/build-box.sh" "$cache" | tail -n1)
phase "box ready ($(basename "$box"))"

export VAGRANT_HOME="$cache/vagrant-home"
# Vagrant's per-project state (.vagrant) in the cache, not in the working
# tree: a killed run must not leave a machine id behind for `vagrant status`.
export VAGRANT_DOTFILE_PATH="$cache/dotfile"
export VAGRANT_DEFAULT_PROVIDER=libvirt
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1
# Vagrant's output, one line per line (its upload progress redraws one line
# thousands of times), each line with the seconds since this script started.
show() {
  stdbuf -o0 tr '\r' '\n' | sed -u -e 's/\x1b\[K//g' -e '/^Progress: [0-9]*%$/d' -e '/^$/d' |
    while IFS= read -r line; do printf '%5ss  %s\n' "$SECONDS" "$line"; done
}
pids=()
kvm_node=""
# What vagrant up leaves in libvirt, gone even when vagrant itself cannot
# (libvirtd exits without stopping its guests and dnsmasq, which would keep
# the namespace alive): the domain, its volume and the management network.
sweep() {
  local d
  # Each step may find nothing to remove: not an error.
  for d in $(virsh -q list --all --name 2>/dev/null | grep '^vagrant_debian12-local'); do
    virsh -q destroy "$d" >/dev/null 2>&1 || true
    virsh -q undefine --remove-all-storage "$d" >/dev/null 2>&1 || true
  done
  virsh -q net-destroy vagrant-libvirt >/dev/null 2>&1 || true
  virsh -q net-undefine vagrant-libvirt >/dev/null 2>&1 || true
  rm -rf "$VAGRANT_DOTFILE_PATH"
}
cleanup() {
  set +e
  if [ ${#pids[@]} -gt 0 ]; then
    (cd "$here" && ip netns exec "$ns" vagrant destroy -f "$machine" >/dev/null 2>&1)
    sweep
    kill "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
  fi
  [ -n "$kvm_node" ] && rm -f "$kvm_node"
  ip netns delete "$ns" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The namespace holds libvirt's bridge, dnsmasq and the VM's tap device; the
# daemons and vagrant (which talks SSH to the VM) run inside it.
ip netns delete "$ns" 2>/dev/null || true
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" virtlogd >"$cache/virtlogd.log" 2>&1 &
pids+=($!)
# Without udev, /dev/kvm stays 0600 root: libvirt then finds KVM "usable" when
# it probes QEMU (as root) but not for its qemu user, calls its capability
# cache outdated at every lookup and probes QEMU again, about 4 s each time
# (108 s of one `vagrant up`). libvirtd alone sees the node as udev would
# make it, 0660 root:kvm, bound over /dev/kvm in its own mount namespace
# (ip netns exec makes one); the host's node is untouched. The VM is still
# emulated: its domain type is qemu.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  kvm_node="$cache/kvm-node"
  rm -f "$kvm_node"
  mknod -m 0660 "$kvm_node" c "$((16#$(stat -c %t /dev/kvm)))" "$((16#$(stat -c %T /dev/kvm)))"
  chgrp kvm "$kvm_node"
fi
# shellcheck disable=SC2016 # expanded by the inner shell
ip netns exec "$ns" sh -c '[ -z "$1" ] || mount --bind "$1" /dev/kvm; exec libvirtd' sh "$kvm_node" \
  >"$cache/libvirtd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  kill -0 "${pids[1]}" 2>/dev/null || { tail -20 "$cache/libvirtd.log" >&2; die "libvirtd stopped"; }
  sleep 0.1
done
virsh -c qemu:///system version >/dev/null 2>&1 || die "libvirtd does not answer (see $cache/libvirtd.log)"
# vagrant-libvirt keeps images in the pool called default.
if ! virsh -q pool-info default >/dev/null 2>&1; then
  virsh -q pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
  virsh -q pool-build default >/dev/null 2>&1 || true
fi
virsh -q pool-start default >/dev/null 2>&1 || true
sweep # what a killed run left

# The box, added again when it was rebuilt (a new version, a new file name);
# vagrant-libvirt's copy of the old image in the pool goes with it.
mark="$VAGRANT_HOME/.added-$(basename "$box")"
if [ ! -e "$mark" ]; then
  ip netns exec "$ns" vagrant box remove --force portico/debian12-local >/dev/null 2>&1 || true
  for vol in $(virsh -q vol-list default | awk '/portico-VAGRANTSLASH-debian12-local/ {print $1}'); do
    virsh -q vol-delete --pool default "$vol" >/dev/null
  done
  ip netns exec "$ns" vagrant box add --force --name portico/debian12-local "$box" >/dev/null
  rm -f "$VAGRANT_HOME"/.added-*
  touch "$mark"
fi
phase "libvirtd up, box added"

cd "$here"
first=${scenarios[0]}
if ! SCENARIO=$first ip netns exec "$ns" vagrant up "$machine" --provider libvirt 2>&1 |
  show | tee "$cache/up.log"; then
  die "vagrant up failed (log: $cache/up.log; libvirtd: $cache/libvirtd.log)"
fi
grep -q "== $first: 0 failed" "$cache/up.log" || die "$first: the assertions did not pass in the VM (log: $cache/up.log)"
phase "vagrant up + $first"

for scenario in "${scenarios[@]:1}"; do
  SCENARIO=$scenario ip netns exec "$ns" vagrant provision "$machine" 2>&1 |
    show | tee "$cache/provision-$scenario.log" || true
  grep -q "== $scenario: 0 failed" "$cache/provision-$scenario.log" ||
    die "$scenario: the assertions did not pass in the VM (log: $cache/provision-$scenario.log)"
  phase "vagrant provision $scenario"
done

ip netns exec "$ns" vagrant destroy -f "$machine" 2>&1 | show
phase "vagrant destroy"
echo "test-local: passed: ${scenarios[*]}"
