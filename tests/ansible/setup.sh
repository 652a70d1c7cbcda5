#!/usr/bin/env bash
# The fleet tooling's checks, run by tests/run before the Rust tests:
#   - ansible-core, pinned, in a virtualenv at $VENV (tests/ansible.rs runs
#     its ansible-playbook against a booted machine);
#   - `ansible-test sanity` on the collection (ansible/ansible_collections/portico/edge);
#   - the example playbook's syntax (ansible/examples/site.yml);
#   - `cloud-init schema` on examples/cloud-init.yaml.
#
#   sudo tests/ansible/setup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

ANSIBLE_CORE=2.19.14   # the last ansible-core that runs on Debian 12's Python 3.11
CACHE=/var/cache/portico-tests
VENV=$CACHE/ansible-venv
# ansible-core refuses to start without a UTF-8 locale.
export LC_ALL=C.UTF-8

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/ansible/setup.sh: needs root (apt-get, $CACHE). Run: sudo tests/ansible/setup.sh" >&2
  exit 2
fi

# Debian's Python and its venv module (the pyenv Pythons some hosts carry are
# not in a clean CI image); cloud-init's Python dependencies, for its schema
# check (cloud-init itself is unpacked below, never installed).
PACKAGES=(python3 python3-venv python3-yaml python3-jsonschema python3-jinja2 python3-requests
          python3-configobj python3-jsonpatch python3-oauthlib python3-netifaces python3-serial)
# shellcheck source-path=SCRIPTDIR source=../apt.sh
. tests/apt.sh
mapfile -t missing < <(apt_missing "${PACKAGES[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/ansible/setup.sh: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# ansible-core from PyPI, once per pinned version.
mkdir -p "$CACHE"
if ! "$VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q "core $ANSIBLE_CORE\]"; then
  echo "tests/ansible/setup.sh: installing ansible-core $ANSIBLE_CORE in $VENV"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$ANSIBLE_CORE"
fi
export PATH="$VENV/bin:$PATH"

# ansible-test puts pip into the virtualenvs it makes for the sanity tests
# with a get-pip.py from its own CI file server, which is not reachable from
# here: tests/ansible/get_pip.py does the same from PyPI. Named for the pip
# version this ansible-test asks for; a real get-pip.py already there is kept.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" \
  "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
[ -n "$pip_version" ] || { echo "tests/ansible/setup.sh: cannot tell which pip ansible-test bootstraps" >&2; exit 1; }
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -e "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  cp tests/ansible/get_pip.py "$get_pip"
fi

echo "tests/ansible/setup.sh: ansible-test sanity"
(cd ansible/ansible_collections/portico/edge && ansible-test sanity --python 3.11 --local --requirements)

echo "tests/ansible/setup.sh: ansible-playbook --syntax-check ansible/examples/site.yml"
(cd ansible/examples && ANSIBLE_CONFIG=ansible.cfg ansible-playbook --syntax-check site.yml >/dev/null)

# cloud-init, Debian's, unpacked into the cache and run from there: installing
# the package would enable its units for this host's next boot and pull in a
# DHCP client. Only its schema check runs; it reads the file it is given.
cloud_version=$(apt-cache policy cloud-init | sed -n 's/^ *Candidate: //p')
if [ -z "$cloud_version" ] || [ "$cloud_version" = "(none)" ]; then
  apt_update_once
  cloud_version=$(apt-cache policy cloud-init | sed -n 's/^ *Candidate: //p')
fi
cloud=$CACHE/cloud-init/$cloud_version
if [ ! -x "$cloud/usr/bin/cloud-init" ]; then
  echo "tests/ansible/setup.sh: unpacking cloud-init $cloud_version"
  rm -rf "$CACHE/cloud-init"
  mkdir -p "$cloud"
  (cd "$CACHE/cloud-init" && apt-get download -qq "cloud-init=$cloud_version")
  dpkg-deb -x "$CACHE"/cloud-init/cloud-init_*.deb "$cloud"
fi
echo "tests/ansible/setup.sh: cloud-init $cloud_version schema --config-file examples/cloud-init.yaml"
PYTHONPATH=$cloud/usr/lib/python3/dist-packages /usr/bin/python3 "$cloud/usr/bin/cloud-init" \
  schema --config-file "$repo/examples/cloud-init.yaml"
