"""`python manage.py runmodwsgi [mod_wsgi-express options]`: serves this Django project through Apache
and mod_wsgi (release notes, New Features 15). Every option of `mod_wsgi-express start-server` is accepted,
--reload-on-changes included; see `python manage.py runmodwsgi --help`."""

import importlib
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import mod_wsgi.server

# What the daemons embed when told nothing (the default build of the addon).
_DEFAULT_PYTHON = '/usr/bin/python3.11'


def _django_arguments():
    """The start-server arguments this project implies: its WSGI script and callable, its directory,
    its static files, and the Python it runs under."""
    entry = getattr(settings, 'WSGI_APPLICATION', None)
    if not entry or '.' not in entry:
        raise CommandError('settings.WSGI_APPLICATION must name the WSGI callable, e.g. mysite.wsgi.application')
    module_name, callable_name = entry.rsplit('.', 1)
    module = importlib.import_module(module_name)
    script = getattr(module, '__file__', None)
    if not script:
        raise CommandError('cannot find the file of %s' % module_name)
    if script.endswith('.pyc'):
        script = script[:-1]

    base_dir = str(getattr(settings, 'BASE_DIR', None) or os.getcwd())
    args = [os.path.abspath(script), '--callable-object', callable_name, '--working-directory', base_dir]

    static_url = getattr(settings, 'STATIC_URL', None)
    static_root = getattr(settings, 'STATIC_ROOT', None)
    if static_url and static_root and not static_url.startswith(('http://', 'https://', '//')):
        url = static_url if static_url.startswith('/') else '/' + static_url
        args += ['--url-alias', url.rstrip('/') or '/', str(static_root)]

    # The daemons embed the Python this command runs under: a virtualenv's (its base installation's
    # CPython, whichever 3.8 to 3.13 it is), or any other installation's but Debian's own default.
    if sys.prefix != getattr(sys, 'base_prefix', sys.prefix):
        args += ['--python-home', sys.prefix]
    elif os.path.realpath(sys.executable) != os.path.realpath(_DEFAULT_PYTHON):
        args += ['--python-executable', sys.executable]
    return args


class Command(BaseCommand):
    help = 'Starts Apache httpd with mod_wsgi serving this Django project (options of mod_wsgi-express start-server).'

    def run_from_argv(self, argv):
        # argv: [manage.py, runmodwsgi, ...]; the options belong to mod_wsgi-express, so they are not parsed here.
        user_args = argv[2:]
        if '--help' in user_args or '-h' in user_args:
            sys.stdout.write(
                'Usage: %s runmodwsgi [options]\n\n'
                'Serves this project through Apache and mod_wsgi. The WSGI script, its working directory and\n'
                'the static files come from the settings (WSGI_APPLICATION, BASE_DIR, STATIC_URL and\n'
                'STATIC_ROOT after collectstatic); the options are those of mod_wsgi-express start-server:\n\n'
                % os.path.basename(argv[0]))
            mod_wsgi.server.start_server(['--help'])
        try:
            args = _django_arguments()
        except CommandError as e:
            sys.stderr.write('runmodwsgi: %s\n' % e)
            sys.exit(2)
        mod_wsgi.server.start_server(args + user_args)

    def handle(self, *args, **options):
        # call_command('runmodwsgi') lands here.
        mod_wsgi.server.start_server(_django_arguments() + list(args))
