# -*- coding: utf-8 -*-
# Copyright: 2026, the portico authors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: portico_apply
short_description: Bring a host to a portico playbook
version_added: 0.1.0
description:
  - Runs C(portico apply --json) on the managed host with a playbook, and reports what portico
    changed, found right, could not do or did not run, task by task.
  - The playbook is given as TOML text in O(content), the usual way, or as a file already on the
    managed host in O(src). O(content) reaches portico on its standard input, so the module writes
    no file of its own.
  - C(portico apply) installs the playbook it applied as C(/etc/portico/playbook.toml) (mode
    C(0600), directory C(0700)), and only once nginx accepted the configuration it describes. That
    file is what C(portico renew), C(portico status) and the renewal daemon read, so a playbook
    that portico refuses or nginx rejects never replaces the one in use. Its path is fixed;
    O(root) moves it with everything else.
  - The module always passes C(--replace). The task's playbook is the host's desired state, so it
    replaces the installed one; a bare C(portico apply) on the host keeps the installed one instead.
  - With a playbook that has ACME certificates, C(portico apply) also installs, enables and starts
    C(portico.service), the renewal daemon.
  - In check mode runs C(portico apply --check), which reads and never writes; the report says
    which files, C(/etc/portico/playbook.toml) among them, would change.
  - In diff mode adds C(--diff), and the one JSON report carries the unified diff of every file that
    changes (private keys redacted; certificates shown by subject, names, issuer and validity).
options:
  content:
    description:
      - The playbook, as TOML text.
      - Mutually exclusive with O(src).
    type: str
  src:
    description:
      - A playbook file on the managed host.
      - To apply a file or template from the controller, pass it as O(content) with
        P(ansible.builtin.file#lookup) or P(ansible.builtin.template#lookup).
      - Mutually exclusive with O(content).
    type: path
  executable:
    description:
      - The portico binary on the managed host.
      - By default C(portico) is looked for in E(PATH), C(/usr/local/bin) and C(/usr/bin).
    type: path
  root:
    description:
      - Operate on the tree under this directory instead of C(/) (C(portico apply --root)). Files
        are written there; host-level steps (packages, services, firewall, C(nginx -t)) are
        skipped. For building images, and for trying a playbook out.
    type: path
  adopt:
    description:
      - Take over files at paths portico writes that it did not write itself (C(--adopt)); portico
        keeps a copy of each in C(/var/lib/portico/archive).
      - Without it, such files fail the task and nothing is changed.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - C(portico apply) needs root unless in check mode; use C(become) or connect as root.
  - The task fails with portico's own message when portico refuses the playbook (exit code 2;
    nothing on the host was touched), and with each failed task's reason when a task fails (exit
    code 1; tasks that depend on it were skipped, and nginx was not reloaded).
  - Every playbook field is described in C(man 5 portico.toml) and in portico's README.
requirements:
  - portico on the managed host (the C(portico.edge.portico) role installs it).
author:
  - portico maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A self-signed HTTPS front end for an internal app
  portico.edge.portico_apply:
    content: |
      version = 1

      [[certificate]]
      name = "internal"
      source = "self-signed"

      [[site]]
      server_names = ["app.internal"]
      certificate = "internal"

      [[site.location]]
      path = "/"
      proxy = "http://127.0.0.1:8080"
  become: true

- name: A playbook templated on the controller
  portico.edge.portico_apply:
    content: "{{ lookup('ansible.builtin.template', 'site.toml.j2') }}"
  become: true

- name: A playbook already on the host, with a binary outside PATH
  portico.edge.portico_apply:
    src: /srv/edge/site.toml
    executable: /opt/portico/bin/portico
  become: true

- name: Render into an image tree; nothing outside it is touched
  portico.edge.portico_apply:
    src: /srv/edge/site.toml
    root: /srv/image
"""

RETURN = r"""
summary:
  description: How many tasks changed (or would), were already right, failed and did not run.
  returned: when portico ran the playbook
  type: dict
  sample: {"changed": 3, "unchanged": 11, "failed": 0, "skipped": 1}
changes:
  description: The tasks that changed the host (in check mode, would), each with its changes.
  returned: when portico ran the playbook
  type: dict
  sample:
    "nginx configuration":
      - {"action": "write-tree", "path": "/etc/nginx/portico/gen-1a2b3c4d5e6f7a8b", "reason": "write generation gen-1a2b3c4d5e6f7a8b"}
    "handler: reload nginx":
      - {"action": "note", "path": null, "reason": "reload nginx.service"}
failures:
  description: The tasks that failed, each with portico's reason.
  returned: when portico ran the playbook
  type: dict
  sample: {"certificate web": "/etc/ssl/web.crt: certificate file does not exist"}
tasks:
  description: portico's report, every task and handler in the order run.
  returned: when portico ran the playbook
  type: list
  elements: dict
  contains:
    name:
      description: The task's line (C(file PATH), C(certificate NAME), C(handler... reload nginx)).
      type: str
      sample: certificate internal
    status:
      description: C(changed), C(unchanged), C(failed) or C(skipped).
      type: str
      sample: changed
    changes:
      description: What it changed (or would), each as its kind (write, mkdir, service, ...), its path (or null) and the sentence portico prints.
      type: list
      elements: dict
      sample: [{"action": "write", "path": "/etc/portico/playbook.toml", "reason": "create /etc/portico/playbook.toml (mode 0600)"}]
    reason:
      description: Why it failed or was skipped.
      type: str
      returned: when it failed or was skipped
      sample: needs "certificate x", which did not succeed
rolled_back:
  description: portico's gate (nginx -t of the new configuration) refused, and every file change of the run was put back.
  returned: when portico ran the playbook
  type: bool
  sample: false
playbook:
  description: The playbook as portico names it (a path, or C((standard input)) for O(content)).
  returned: when portico ran the playbook
  type: str
  sample: (standard input)
cmd:
  description: The portico command line that was run.
  returned: always
  type: list
  elements: str
  sample: ["/usr/local/bin/portico", "apply", "--replace", "--json", "--", "-"]
rc:
  description: portico's exit code (0 success, 1 a task failed, 2 bad input).
  returned: always
  type: int
  sample: 0
stderr:
  description: What portico printed on standard error.
  returned: always
  type: str
  sample: ""
"""

import json

from ansible.module_utils.basic import AnsibleModule


def portico_command(module):
    """The argv of C(portico apply), without its mode flags."""
    p = module.params
    executable = p["executable"] or module.get_bin_path(
        "portico", required=True, opt_dirs=["/usr/local/bin", "/usr/bin"]
    )
    # The task's playbook is the host's desired state: it replaces the
    # installed one, sites and all.
    cmd = [executable, "apply", "--replace"]
    if p["root"]:
        cmd += ["--root", p["root"]]
    if p["adopt"]:
        cmd.append("--adopt")
    return cmd


def run(module, cmd, playbook_args, content):
    """Runs portico with the playbook as file argument or on stdin."""
    full = cmd + playbook_args
    if content is None:
        rc, out, err = module.run_command(full)
    else:
        rc, out, err = module.run_command(full, data=content, binary_data=True)
    return full, rc, out, err


def refused(module, cmd, rc, out, err):
    """Fails the task with portico's own words: bad input, or no report at all."""
    text = err.strip() or out.strip() or "portico exited with code %d and said nothing" % rc
    if text.startswith("error: "):
        text = text[len("error: "):]
    module.fail_json(msg="portico: " + text, cmd=cmd, rc=rc, stdout=out, stderr=err, changed=False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            # The whole playbook: it may name secret files, and it must not
            # reach the managed host's syslog (Ansible logs module arguments).
            content=dict(type="str", no_log=True),
            src=dict(type="path"),
            executable=dict(type="path"),
            root=dict(type="path"),
            adopt=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("content", "src")],
        required_one_of=[("content", "src")],
        supports_check_mode=True,
    )
    content = module.params["content"]
    if content is not None and not content.strip():
        # run_command would not connect stdin at all, and portico would read
        # whatever standard input the module inherited.
        module.fail_json(msg="content is empty: give the playbook's TOML text")
    # "--": a src that starts with "-" is still a file name.
    playbook_args = ["--", "-"] if content is not None else ["--", module.params["src"]]
    cmd = portico_command(module)

    # One run: with --diff the JSON report carries each file's diff.
    mode = ["--check", "--json"] if module.check_mode else ["--json"]
    if module._diff:
        mode.append("--diff")
    full, rc, out, err = run(module, cmd + mode, playbook_args, content)
    if rc not in (0, 1):
        refused(module, full, rc, out, err)
    try:
        report = json.loads(out)
    except ValueError:
        refused(module, full, rc, out, err)

    tasks = report.get("tasks", [])
    summary = dict((k, report.get(k, 0)) for k in ("changed", "unchanged", "failed", "skipped"))
    changes = dict((t["name"], t.get("changes", [])) for t in tasks if t.get("status") == "changed")
    failures = dict(
        (t["name"], t.get("reason", "")) for t in tasks if t.get("status") == "failed"
    )
    for warning in report.get("warnings", []):
        module.warn(warning)

    result = dict(
        changed=summary["changed"] > 0,
        summary=summary,
        changes=changes,
        failures=failures,
        tasks=tasks,
        playbook=report.get("playbook", ""),
        rolled_back=report.get("rolled_back", False),
        cmd=full,
        rc=rc,
        stderr=err,
    )
    if module._diff and result["changed"]:
        result["diff"] = {"prepared": "".join("".join(t.get("diffs", [])) for t in tasks)}

    counts = "%(changed)d changed, %(unchanged)d unchanged, %(failed)d failed, %(skipped)d skipped" % summary
    if module.check_mode:
        counts += " (check mode: nothing was touched)"
    if rc != 0 or failures:
        reasons = "; ".join("%s: %s" % (name, reason) for name, reason in failures.items())
        result["msg"] = "portico: %d task(s) failed: %s (%s)" % (len(failures), reasons or "see tasks", counts)
        module.fail_json(**result)
    result["msg"] = counts
    module.exit_json(**result)


if __name__ == "__main__":
    main()
