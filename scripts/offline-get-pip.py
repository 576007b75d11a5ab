"""Stand-in for pip's get-pip.py, for ansible-test's sanity virtualenvs on machines that reach PyPI but
not ci-files.testing.ansible.com: it runs the pip wheel that ships with this Python (ensurepip) as
`pip install ARGS...`, which then installs the requested pip release from the package index.

ansible-test runs it with the arguments it would give get-pip.py (e.g. `pip==24.2 --no-setuptools`).
"""

import ensurepip
import glob
import os
import sys

wheels = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
if not wheels:
    sys.exit("offline-get-pip: this Python has no bundled pip wheel (install python3-pip-whl)")
sys.path.insert(0, wheels[0])

from pip._internal.cli.main import main  # noqa: E402

# get-pip.py's own options: without --no-setuptools / --no-wheel it installs those as well.
OWN = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}
args = [arg for arg in sys.argv[1:] if arg not in OWN]
args += [package for option, package in OWN.items() if option not in sys.argv[1:]]
sys.exit(main(["install", "--upgrade", *args]))
