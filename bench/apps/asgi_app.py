# The ASGI applications of bench/asgi.ts, plain ASGI (no framework): the same file is served by this
# module (WSGIScriptAlias, callable `app`) and by uvicorn behind mod_proxy_http.
#   /hello          hello world
#   /stream?size=N  N bytes (default 1 MiB) sent in 64 KiB http.response.body messages (more_body)
#   /echo           reads the whole request body, answers its length
HELLO = b'Hello World!'
BLOCK = b'x' * 65536


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    path = scope['path']
    if path.endswith('/stream'):
        size = 1 << 20
        for part in scope['query_string'].split(b'&'):
            if part.startswith(b'size='):
                size = int(part[5:])
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'application/octet-stream')]})
        while size > 0:
            n = min(size, len(BLOCK))
            size -= n
            await send({'type': 'http.response.body', 'body': BLOCK[:n], 'more_body': size > 0})
        return
    if path.endswith('/echo'):
        total = 0
        while True:
            message = await receive()
            total += len(message.get('body', b''))
            if not message.get('more_body'):
                break
        body = str(total).encode()
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain'), (b'content-length', str(len(body)).encode())]})
        await send({'type': 'http.response.body', 'body': body})
        return
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain'), (b'content-length', b'12')]})
    await send({'type': 'http.response.body', 'body': HELLO})
