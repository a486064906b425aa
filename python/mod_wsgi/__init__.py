"""mod_wsgi 4.1.0 (TypeScript daemon): the Python side.

Inside a daemon process the embedded interpreter adds process_group, application_group and version to
this module, as the original mod_wsgi does. Outside Apache, `mod_wsgi.server` holds the Django app that
provides `manage.py runmodwsgi`.
"""

version = (4, 1, 0)
