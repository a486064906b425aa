# A 10 MiB file through wsgi.file_wrapper (sent by Apache with sendfile when WSGIEnableSendfile is On).
import os


def application(environ, start_response):
    path = os.path.join(environ['BENCH_DATA'], 'file-10m.bin')
    f = open(path, 'rb')
    size = os.fstat(f.fileno()).st_size
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])
    return environ['wsgi.file_wrapper'](f, 65536)
