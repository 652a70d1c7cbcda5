#!/usr/bin/env bash
# Builds (once) a Vagrant box for the libvirt provider from Debian packages
# only: a debootstrapped Debian 12 root with a kernel, GRUB, openssh-server
# and Vagrant's conventions (user vagrant, password-less sudo, Vagrant's
# insecure key, replaced at the first `vagrant up`), in a qcow2 image. The VM
# has no internet, so the image carries an offline apt repository
# (/srv/repo) with what provisioning installs: nginx, curl, openssl,
# testssl.sh, iptables.
#
#   vagrant/build-box.sh CACHE_DIR   -> CACHE_DIR/portico-debian12.box
#
# Reused when complete (a version stamp in its name: bump it when this script
# changes). Needs root (debootstrap, chroot), debootstrap, fdisk (sfdisk),
# e2fsprogs, qemu-utils and dpkg-dev; no loop
# device or mount: the file system is made from the directory (mke2fs -d) and
# GRUB is written into the disk image's first megabyte by hand.
set -euo pipefail
cache=${1:?usage: build-box.sh CACHE_DIR}
version=v3
box="$cache/portico-debian12-$version.box"
[ -e "$box" ] && { echo "$box"; exit 0; }

for tool in debootstrap sfdisk mke2fs qemu-img dpkg-scanpackages; do
  command -v "$tool" >/dev/null ||
    { echo "build-box: $tool is missing (apt-get install debootstrap fdisk e2fsprogs qemu-utils dpkg-dev)" >&2; exit 2; }
done
insecure_key=$(find /usr/share/rubygems-integration/all/gems -path '*/vagrant-*/keys/vagrant.pub' 2>/dev/null | head -n1)
[ -n "$insecure_key" ] ||
  { echo "build-box: Vagrant's insecure public key not found: apt-get install vagrant" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/machine/mirror.sh
. "$here/../tests/machine/mirror.sh"
mirror=$(debian_mirror)

rm -f "$cache"/portico-debian12-*.box # older versions
work="$cache/box.tmp"
root="$work/root"
# --one-file-system: a killed debootstrap can leave proc and sys mounted.
rm -rf --one-file-system "$work"
mkdir -p "$work"
log="$work/build.log"
step() { printf 'build-box: %s (%ss)\n' "$1" "$SECONDS" >&2; }

step "debootstrap"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,udev,kmod,linux-image-amd64,initramfs-tools,grub-pc-bin,openssh-server,sudo,rsync,iproute2,ca-certificates,procps \
  bookworm "$root" "$mirror" >"$log" 2>&1 ||
  { tail -20 "$log" >&2; exit 1; }

step "offline repository"
# What provision.sh installs and what portico installs (nginx, and
# iptables-persistent where iptables is the firewall), served from /srv/repo
# inside the VM.
PKGS="nginx curl openssl testssl.sh iptables iptables-persistent netfilter-persistent"
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" apt-get update -qq
# shellcheck disable=SC2086 # a list: split on purpose
chroot "$root" apt-get install -y -qq --download-only $PKGS >/dev/null
mkdir -p "$root/srv/repo"
mv "$root"/var/cache/apt/archives/*.deb "$root/srv/repo/"
(cd "$root/srv/repo" && dpkg-scanpackages --multiversion . /dev/null 2>>"$log" >Packages)
echo 'deb [trusted=yes] file:/srv/repo ./' >"$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*
rm -rf "$root"/var/lib/apt/lists/*
chroot "$root" apt-get update -qq
: >"$root/etc/resolv.conf"

step "vagrant conventions"
chroot "$root" useradd --create-home --shell /bin/bash vagrant
# Vagrant's convention (password vagrant) for the console only: SSH takes
# keys alone, and root has no password.
echo 'vagrant:vagrant' | chroot "$root" chpasswd
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$insecure_key" "$root/home/vagrant/.ssh/authorized_keys"
# Every VM its own SSH host keys and machine ID, made at its first boot.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$root/etc/systemd/system/ssh.service.d/host-keys.conf"
printf 'UseDNS no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n' \
  >"$root/etc/ssh/sshd_config.d/vagrant.conf"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo portico-box >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 portico-box\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# DHCP on whatever the first NIC is called (libvirt's network answers).
cat >"$root/etc/systemd/network/50-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$root" systemctl mask getty@tty1.service >/dev/null 2>&1
chroot "$root" apt-get clean

step "disk image"
size_mib=4096
uuid=$(cat /proc/sys/kernel/random/uuid)
kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -e "$root/boot/$initrd" ] || { echo "build-box: no $initrd in the root" >&2; exit 1; }
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >"$root/etc/fstab"
mkdir -p "$root/boot/grub"
cat >"$root/boot/grub/grub.cfg" <<EOF
set timeout=0
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root $uuid
linux /boot/$kernel root=UUID=$uuid ro console=ttyS0,115200 console=tty0 net.ifnames=0
initrd /boot/$initrd
boot
EOF
# GRUB's core image for BIOS, made by the root's own grub-pc-bin, embedded in
# the gap before the first partition: boot.img (the MBR code, 440 bytes)
# jumps to sector 1, where core.img's own block list expects the rest at
# sector 2 onwards, as grub-install would write it.
chroot "$root" grub-mkimage -O i386-pc -o /boot/grub/core.img \
  -p "(hd0,msdos1)/boot/grub" biosdisk part_msdos ext2 search_fs_uuid normal linux configfile
cp -r "$root/usr/lib/grub/i386-pc" "$root/boot/grub/i386-pc"
core_bytes=$(stat -c %s "$root/boot/grub/core.img")
[ "$core_bytes" -lt $((2047 * 512)) ] || { echo "build-box: core.img too large ($core_bytes)" >&2; exit 1; }

mke2fs -q -t ext4 -U "$uuid" -L portico-root -d "$root" "$work/part.img" "$((size_mib - 1))M"
truncate -s "${size_mib}M" "$work/disk.raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$work/disk.raw"
dd if="$work/part.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$root/usr/lib/grub/i386-pc/boot.img" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$root/boot/grub/core.img" of="$work/disk.raw" bs=512 seek=1 conv=notrunc status=none
rm -f "$work/part.img"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
rm -f "$work/disk.raw"

step "box"
cat >"$work/metadata.json" <<EOF
{"provider": "libvirt", "format": "qcow2", "virtual_size": $((size_mib / 1024))}
EOF
cat >"$work/Vagrantfile" <<'EOF'
# The local Debian 12 box's defaults (see vagrant/build-box.sh).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOF
tar -C "$work" -cf "$box.tmp" metadata.json Vagrantfile box.img
mv "$box.tmp" "$box"
rm -rf "$work"
step "done: $box ($(du -h "$box" | cut -f1))"
echo "$box"
