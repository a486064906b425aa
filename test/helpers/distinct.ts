// The bytes test/fixtures/wsgi/distinct/app.wsgi answers with, computed the same way, so that a client can
// check every byte of a response (no bytes of another request in it).

/** "<token>:<offset>|" repeated, cut to `size` bytes (the fixture's pattern()). */
export function distinctPattern(token: string, size: number): Buffer {
  const parts: string[] = []
  let n = 0
  while (n < size) {
    const p = `${token}:${n}|`
    parts.push(p)
    n += p.length
  }
  return Buffer.from(parts.join('').slice(0, size), 'latin1')
}
