# httpx (Debian's python3-httpx) against an ASGI application through Apache: a streamed response read
# line by line as it arrives, and many requests at once from an AsyncClient. Prints one JSON object.
import asyncio
import json
import sys
import time

import httpx

base = sys.argv[1]
out = {}

started = time.monotonic()
with httpx.Client(timeout=30) as client:
    with client.stream('GET', base + '/b/sse?n=3&pause=0.6') as r:
        out['sse_status'] = r.status_code
        out['sse'] = [[line.strip(), round(time.monotonic() - started, 3)] for line in r.iter_lines() if line.strip()]
    r = client.post(base + '/b/echo', content=b'z' * 300000)
    out['echo'] = r.json()


async def many(n):
    async with httpx.AsyncClient(timeout=30) as client:
        rs = await asyncio.gather(*(client.get(base + '/hello/') for _ in range(n)))
    return [r.status_code for r in rs], [r.text for r in rs][:1]

out['many'], out['body'] = asyncio.run(many(50))
print(json.dumps(out))
