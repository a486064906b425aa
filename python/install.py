"""Makes the `mod_wsgi` Python package (this folder) importable by the Python that runs this script:
writes mod_wsgi.pth into that Python's site-packages, pointing here. Nothing is copied, so the package
always matches this checkout. Usage:

    /usr/bin/python3 python/install.py            # Debian's Python (as root)
    /path/to/venv/bin/python python/install.py    # a virtualenv
    python3 python/install.py --uninstall
"""

import os
import sys
import sysconfig

here = os.path.dirname(os.path.abspath(__file__))
target = os.path.join(sysconfig.get_paths()['purelib'], 'mod_wsgi.pth')

if '--uninstall' in sys.argv[1:]:
    if os.path.exists(target):
        os.remove(target)
    print('removed %s' % target)
else:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'w') as fp:
        fp.write(here + '\n')
    print('mod_wsgi package: %s -> %s' % (target, here))
