# A connection for tests/ansible.rs: ansible-playbook runs on the host (the
# controller) and reaches a booted test machine (systemd-nspawn
# --private-network, no SSH inside) the way the test harness does, through
# `nsenter` into its init's namespaces. ansible_host is that init's PID as
# the host sees it. Files go in and out as bytes on nsenter's stdin and
# stdout, so nothing is resolved through the host's view of the machine's
# paths. Test-only: it lives here, not in the collection.

from __future__ import annotations

DOCUMENTATION = """
name: nspawn_machine
short_description: run on a booted test machine through nsenter
description:
  - Runs commands inside the namespaces of a running container's init, from the host, as root.
options:
  remote_addr:
    description: The PID (on the host) of the machine's init.
    type: str
    vars:
      - name: ansible_host
"""

import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

# What the harness's Machine::run gives a command: a clean environment.
ENV = [
    "env",
    "-i",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "LANG=C.UTF-8",
]


class Connection(ConnectionBase):
    transport = "nspawn_machine"
    has_pipelining = False
    default_user = "root"

    def _argv(self, argv):
        pid = str(self.get_option("remote_addr") or "")
        if not pid.isdigit():
            raise AnsibleConnectionFailure("ansible_host must be the machine's init PID, not %r" % pid)
        return ["nsenter", "-t", pid, "-a"] + ENV + argv

    def _connect(self):
        if not self._connected:
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        p = subprocess.run(
            self._argv(["/bin/sh", "-c", cmd]),
            input=in_data,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        return p.returncode, p.stdout, p.stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as f:
            p = subprocess.run(
                self._argv(["/bin/sh", "-c", 'cat > "$1"', "sh", out_path]),
                stdin=f,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
        if p.returncode != 0:
            raise AnsibleError("writing %s in the machine: %s" % (out_path, p.stderr.decode(errors="replace")))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        with open(out_path, "wb") as f:
            p = subprocess.run(
                self._argv(["cat", in_path]), stdout=f, stderr=subprocess.PIPE, check=False
            )
        if p.returncode != 0:
            raise AnsibleError("reading %s in the machine: %s" % (in_path, p.stderr.decode(errors="replace")))

    def close(self):
        self._connected = False
