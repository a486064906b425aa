# A minimal WSGI application, served by the README's first command.
import os
import sys


def application(environ, start_response):
    body = ('Hello from mod_wsgi 4.1.0 (TypeScript daemon), Python %s, pid %d, process group %r\n' % (
        sys.version.split()[0], os.getpid(), environ.get('mod_wsgi.process_group'))).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'),
                              ('Content-Length', str(len(body)))])
    return [body]
