# Python's `websockets` (Debian's python3-websockets) against the WebSocket fixture through Apache:
# prints one JSON object with what it saw. Usage: websockets_client.py BASE_URL [CA_FILE]
import asyncio
import json
import ssl
import sys
import time

import websockets


async def main(base, ca):
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    out = {}
    async with websockets.connect(base + '/echo', ssl=ctx, max_size=None, compression=None) as ws:
        await ws.send('hello from websockets')
        out['text'] = await ws.recv()
        await ws.send(b'\x00\x01\xff')
        out['bytes'] = list(await ws.recv())
        big = bytes(range(256)) * 4096  # 1 MiB
        await ws.send(big)
        out['big_ok'] = (await ws.recv()) == big
        started = time.monotonic()
        pong = await ws.ping(b'are you there')
        await asyncio.wait_for(pong, 5)
        out['pong_ms'] = round((time.monotonic() - started) * 1000, 1)
        await ws.close(code=4005, reason='python done')
        out['close'] = [ws.close_code, ws.close_reason]
    async with websockets.connect(base + '/subprotocol', ssl=ctx, subprotocols=['alpha', 'beta']) as ws:
        out['subprotocol'] = ws.subprotocol
        out['offered'] = await ws.recv()
    async with websockets.connect(base + '/return', ssl=ctx) as ws:
        out['server_says'] = await ws.recv()
        try:
            await ws.recv()
        except websockets.exceptions.ConnectionClosedOK as e:
            out['server_close'] = e.code
    try:
        async with websockets.connect(base + '/deny', ssl=ctx):
            pass
    except websockets.exceptions.InvalidStatusCode as e:
        out['deny_status'] = e.status_code

    async def one(i):
        async with websockets.connect(base + '/echo', ssl=ctx) as ws:
            got = []
            for k in range(10):
                await ws.send('%d-%d' % (i, k))
            for k in range(10):
                got.append(await ws.recv())
            return got == ['%d-%d' % (i, k) for k in range(10)]

    out['many'] = all(await asyncio.gather(*(one(i) for i in range(50))))
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
