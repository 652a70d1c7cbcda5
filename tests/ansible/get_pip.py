"""A stand-in for get-pip.py, which ansible-test downloads from its own CI
file server (not PyPI) to put pip into the virtualenvs it makes for the
sanity tests. The same job from PyPI: ensurepip's bundled pip, then the
pip that ansible-test asked for. ansible-test runs it as
`python get_pip_X_Y.py [pip options] pip==X.Y --no-setuptools --no-wheel`.
"""

import subprocess
import sys

args = sys.argv[1:]
keep_setuptools = "--no-setuptools" not in args
pip_args = [a for a in args if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + pip_args)
if not keep_setuptools:
    subprocess.check_call(
        [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"]
    )
