"""Runs mod_wsgi-express from Python: used by Django's `runmodwsgi` command (add 'mod_wsgi.server' to
INSTALLED_APPS)."""

import os
import shutil
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))

# python/mod_wsgi/server/ -> the project root, where bin/mod_wsgi-express lives.
PROJECT_ROOT = os.path.normpath(os.path.join(_HERE, '..', '..', '..'))


def express_command():
    """The command line that runs mod_wsgi-express: [node, script]."""
    script = os.environ.get('MOD_WSGI_EXPRESS') or os.path.join(PROJECT_ROOT, 'bin', 'mod_wsgi-express')
    if not os.path.exists(script):
        raise RuntimeError('mod_wsgi-express not found at %s (set MOD_WSGI_EXPRESS)' % script)
    node = os.environ.get('MOD_WSGI_NODE') or shutil.which('node') or '/usr/bin/node'
    return [node, script]


def where():
    """Path of the Apache module, as the original mod_wsgi.server.where() gives it."""
    return os.path.join(PROJECT_ROOT, 'build', 'mod_wsgi.so')


def start_server(arguments):
    """Replaces this process with `mod_wsgi-express start-server ARGUMENTS`."""
    command = express_command() + ['start-server'] + list(arguments)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def start_reloader(interval=1.0):
    """Restarts this daemon process when an imported module's file changes (what --reload-on-changes
    does); see mod_wsgi.server.reloader."""
    from . import reloader
    return reloader.start_reloader(interval)


def track_changes(path):
    """Also restarts the process when `path` changes, once start_reloader() has been called."""
    from . import reloader
    reloader.track_changes(path)
