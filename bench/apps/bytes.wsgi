# A response of ?size=N bytes (default 64 KiB) in one piece.
from urllib.parse import parse_qs

_cache = {}


def application(environ, start_response):
    size = int(parse_qs(environ.get('QUERY_STRING', '')).get('size', ['65536'])[0])
    body = _cache.get(size)
    if body is None:
        body = _cache[size] = b'x' * size
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])
    return [body]
