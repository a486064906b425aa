# A response of ?size=N bytes (default 10 MiB) yielded by a generator in 64 KiB blocks.
from urllib.parse import parse_qs

BLOCK = b'y' * 65536


def application(environ, start_response):
    size = int(parse_qs(environ.get('QUERY_STRING', '')).get('size', [str(10 << 20)])[0])
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])

    def body():
        left = size
        while left > 0:
            block = BLOCK if left >= len(BLOCK) else BLOCK[:left]
            left -= len(block)
            yield block
    return body()
