# The WebSocket application of bench/websocket.ts, plain ASGI (no framework): every message echoed back
# as it came (text as text, bytes as bytes). The same file is served by this module (WSGIScriptAlias,
# callable `app`) and by uvicorn (websockets, uvloop) behind Apache's mod_proxy_wstunnel.


async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                await send({'type': 'lifespan.startup.complete'})
            else:
                await send({'type': 'lifespan.shutdown.complete'})
                return
    if scope['type'] != 'websocket':
        await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-length', b'2')]})
        await send({'type': 'http.response.body', 'body': b'ok'})
        return
    await receive()  # websocket.connect
    await send({'type': 'websocket.accept'})
    while True:
        message = await receive()
        if message['type'] == 'websocket.disconnect':
            return
        if 'text' in message and message['text'] is not None:
            await send({'type': 'websocket.send', 'text': message['text']})
        else:
            await send({'type': 'websocket.send', 'bytes': message['bytes']})
