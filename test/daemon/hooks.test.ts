// The real daemon (Node + the addon + Python) running hooks and lookups over the wire, with the test
// playing the Apache child: it chooses every variable's value, answers lookups or abandons them, and
// sends malformed frames. Each failure costs one connection (or one hook) and the daemon serves on.
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { decodeAuthResult, decodeVarLookup, encodeAuth, encodeVarValue, type AuthInit } from '../../src/protocol/auth-frames'
import { decodeEnd, decodeHead, encodeFrame } from '../../src/protocol/frames'
import { AuthHook, AuthOutcome, FrameType } from '../../src/protocol/wire'
import { fixture, requestFrames, skipReason, startDaemon, text, type WireClient } from './harness'

const skip = skipReason()
if (skip) t.plan(0, skip)

const AUTH = fixture('auth-hooks', 'auth.wsgi')

const hook = (o: Partial<AuthInit> & { arg1: string }): Buffer =>
  encodeAuth({ hook: AuthHook.CHECK_PASSWORD, script: AUTH, applicationGroup: '', lookup: true, vars: [['REMOTE_ADDR', '127.0.0.1']], ...o })

/** Reads frames to the AUTH_RESULT, answering each VAR_LOOKUP from `vars` (absent when not there). */
async function authResult(c: WireClient, vars: Record<string, string> = {}) {
  const asked: string[] = []
  for (;;) {
    const f = await c.nextFrame()
    if (f === null) throw new Error('connection closed')
    if (f.type === FrameType.VAR_LOOKUP) {
      const name = decodeVarLookup(f.payload)
      asked.push(name)
      c.write(encodeVarValue(name in vars ? vars[name] : null))
      continue
    }
    if (f.type !== FrameType.AUTH_RESULT) throw new Error(`unexpected frame 0x${f.type.toString(16)}`)
    return { ...decodeAuthResult(f.payload), asked }
  }
}

t.test('hooks and lookups in a daemon', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2 } })

  await t.test('check_password: its answer, and mod_ssl.var_lookup() answered by the child', async (t) => {
    const c = await d.connect()
    c.write(hook({ arg1: 'spy', arg2: 'secret' }))
    const ok = await authResult(c, { SSL_CLIENT_S_DN_CN: 'someone' })
    t.same([ok.outcome, ok.values], [AuthOutcome.GRANTED, []])
    t.same(ok.asked, ['SSL_CLIENT_S_DN_CN'], 'the fixture looked its CN up (for its log line)')
    c.write(hook({ arg1: 'certuser', arg2: 'cert', ssl: true }))
    t.equal((await authResult(c, { SSL_CLIENT_S_DN_CN: 'client-one' })).outcome, AuthOutcome.GRANTED, 'granted on the CN we gave')
    c.write(hook({ arg1: 'certuser', arg2: 'cert', ssl: true }))
    t.equal((await authResult(c, { SSL_CLIENT_S_DN_CN: 'client-two' })).outcome, AuthOutcome.DENIED)
    c.write(hook({ arg1: 'nobody', arg2: 'x' }))
    t.equal((await authResult(c)).outcome, AuthOutcome.NOT_FOUND)
    c.write(hook({ arg1: 'alias', arg2: 'x' }))
    t.same(await authResult(c), { outcome: AuthOutcome.GRANTED, values: ['canonical'], asked: ['SSL_CLIENT_S_DN_CN'] })
    await d.waitForLog(/hook check_password user=certuser .* https=1 cn='client-one'/)
    await d.waitForLog(/hook check_password user=spy .* https=0 cn='someone'/)
    c.close()
  })

  await t.test('without an SSL module (no LOOKUP flag) var_lookup() answers None without asking', async (t) => {
    const c = await d.connect()
    c.write(hook({ arg1: 'spy', arg2: 'secret', lookup: false }))
    const r = await authResult(c)
    t.equal(r.outcome, AuthOutcome.GRANTED)
    t.same(r.asked, [])
    await d.waitForLog(/hook check_password user=spy .* https=0 cn=None/)
    c.close()
  })

  await t.test('get_realm_hash, groups_for_user and allow_access', async (t) => {
    const c = await d.connect()
    c.write(hook({ hook: AuthHook.GET_REALM_HASH, arg1: 'spy', arg2: 'Realm' }))
    const md5 = (await import('node:crypto')).createHash('md5').update('spy:Realm:secret').digest('hex')
    t.same((await authResult(c)).values, [md5])
    c.write(hook({ hook: AuthHook.GROUPS_FOR_USER, arg1: 'bob' }))
    t.same((await authResult(c)).values, ['builders', 'staff'])
    c.write(hook({ hook: AuthHook.ALLOW_ACCESS, arg1: '127.0.0.3' }))
    t.equal((await authResult(c)).outcome, AuthOutcome.NOT_FOUND)
    c.write(hook({ hook: AuthHook.ALLOW_ACCESS, arg1: '127.0.0.4' }))
    t.equal((await authResult(c)).outcome, AuthOutcome.ERROR, 'an exception')
    await d.waitForLog(/RuntimeError: deliberate failure in allow_access/)
    c.close()
  })

  await t.test('a script without the function: ERROR and mod_wsgi\'s message', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wsgi-hooks-'))
    chmodSync(dir, 0o755)
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const script = join(dir, 'empty.wsgi')
    writeFileSync(script, '# no hooks here\n')
    const c = await d.connect()
    c.write(hook({ arg1: 'spy', arg2: 'secret', script, applicationGroup: 'other' }))
    t.equal((await authResult(c)).outcome, AuthOutcome.ERROR)
    await d.waitForLog(/WSGI03080: Target WSGI user authentication script '[^']*empty\.wsgi' does not provide 'Basic' auth provider\./)
    c.close()
  })

  await t.test('WSGIScriptReloading: a changed script is reloaded only when the flag says so', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wsgi-hooks-'))
    chmodSync(dir, 0o755)
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const script = join(dir, 'versioned.wsgi')
    const version = (v: string, mtime: number) => {
      writeFileSync(script, `def check_password(environ, user, password):\n    return password == '${v}'\n`)
      utimesSync(script, mtime, mtime)
    }
    const now = Math.floor(Date.now() / 1000)
    version('one', now - 10)
    const c = await d.connect()
    const ask = async (password: string, reloading: boolean) => {
      c.write(hook({ arg1: 'u', arg2: password, script, applicationGroup: 'versioned', reloading, lookup: false }))
      return (await authResult(c)).outcome
    }
    t.equal(await ask('one', false), AuthOutcome.GRANTED)
    version('two', now)
    t.equal(await ask('one', false), AuthOutcome.GRANTED, 'reloading off: the loaded script stays')
    t.equal(await ask('two', true), AuthOutcome.GRANTED, 'reloading on: the new script answers')
    t.equal(await ask('one', true), AuthOutcome.DENIED)
    await d.waitForLog(/WSGI03014: Reloading WSGI script '[^']*versioned\.wsgi'/)
    c.close()
  })

  await t.test('a request over SSL: lookups answered among the response frames', async (t) => {
    const frames = requestFrames({ script: fixture('ssl-vars'), query: 'vars=SSL_PROTOCOL,NOPE' })
    frames[0].writeUInt32BE(frames[0].readUInt32BE(8) | 2, 8) // REQUEST_SSL
    const c = await d.connect()
    for (const f of frames) c.write(f)
    const asked: string[] = []
    let head = null
    let body = Buffer.alloc(0)
    for (;;) {
      const f = await c.nextFrame()
      if (f === null) throw new Error('closed')
      if (f.type === FrameType.VAR_LOOKUP) {
        const n = decodeVarLookup(f.payload)
        asked.push(n)
        c.write(encodeVarValue(n === 'SSL_PROTOCOL' ? 'TLSv1.3' : null))
      } else if (f.type === FrameType.HEAD) head = decodeHead(f.payload)
      else if (f.type === FrameType.RBODY) body = Buffer.concat([body, f.payload])
      else if (f.type === FrameType.END) {
        t.equal(decodeEnd(f.payload), 0)
        break
      } else throw new Error(`frame 0x${f.type.toString(16)}`)
    }
    t.equal(head?.status, 200)
    t.same(asked, ['SSL_PROTOCOL', 'NOPE'])
    const j = JSON.parse(body.toString())
    t.same(j.vars, { SSL_PROTOCOL: 'TLSv1.3', NOPE: null })
    t.equal(j.is_https, 1)
    t.equal(j.url_scheme, 'http', 'wsgi.url_scheme comes from mod_wsgi.url_scheme, which the child sets')
    c.close()
  })

  /** Sends an SSL request and answers its lookups from `vars`; the response body and the names asked. */
  const sslRequest = async (c: WireClient, spec: Parameters<typeof requestFrames>[0], vars: Record<string, string>) => {
    const frames = requestFrames(spec)
    frames[0].writeUInt32BE(frames[0].readUInt32BE(8) | 2, 8) // REQUEST_SSL
    for (const f of frames) c.write(f)
    let asked = 0
    const names = new Set<string>()
    const body: Buffer[] = []
    for (;;) {
      const f = await c.nextFrame()
      if (f === null) throw new Error('closed')
      if (f.type === FrameType.VAR_LOOKUP) {
        const n = decodeVarLookup(f.payload)
        asked++
        names.add(n)
        c.write(encodeVarValue(n in vars ? vars[n] : null))
      } else if (f.type === FrameType.RBODY) body.push(f.payload)
      else if (f.type === FrameType.END) return { body: Buffer.concat(body).toString(), asked, names: [...names].sort() }
      else if (f.type !== FrameType.HEAD) throw new Error(`frame 0x${f.type.toString(16)}`)
    }
  }

  await t.test('variables sent ahead (mod_ssl.var:NAME) answer var_lookup() without asking, and stay out of the environ', async (t) => {
    const c = await d.connect()
    const ahead: Array<[string, string]> = [['mod_ssl.var:SSL_PROTOCOL', 'TLSv1.2']]
    const r = await sslRequest(c, { script: fixture('ssl-vars'), query: 'vars=SSL_PROTOCOL,NOPE', vars: ahead }, {})
    t.same(JSON.parse(r.body).vars, { SSL_PROTOCOL: 'TLSv1.2', NOPE: null })
    t.same(r.names, ['NOPE'], 'only the variable not sent ahead was asked for')
    const env = JSON.parse((await sslRequest(c, { script: fixture('environ-json'), vars: ahead }, {})).body)
    t.notOk('mod_ssl.var:SSL_PROTOCOL' in env)
    t.match(env['mod_ssl.var_lookup'], /ssl_var_lookup/)
    c.close()
  })

  await t.test('10,000 lookups over the wire: reference counts, allocations and the daemon\'s memory stay flat', async (t) => {
    const c = await d.connect()
    const vars = { SSL_CLIENT_S_DN_CN: 'client-one', SSL_PROTOCOL: 'TLSv1.3', NO_SUCH_VARIABLE: '' }
    const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${d.pid}/status`, 'latin1'))?.[1])
    const leak = async () => {
      const r = await sslRequest(c, { script: fixture('ssl-vars'), query: 'mode=leak&n=10000&vars=SSL_PROTOCOL' }, vars)
      t.equal(r.asked, 10000 + 300 + 1, 'every call went over the wire')
      return JSON.parse(r.body).leak
    }
    await leak()
    const before = rss()
    const runs = [await leak(), await leak()]
    const after = rss()
    for (const l of runs) {
      t.match(l.values, ["''", "'TLSv1.3'", "'client-one'"])
      t.same([l.delta.name, l.delta.bytes_name, l.delta.missing_name, l.delta.lookup], [0, 0, 0, 0], 'reference counts unchanged')
      t.ok(Math.abs(l.delta.none) < 100, `None moved by ${l.delta.none}`)
      t.ok(Math.abs(l.delta.blocks) < 200, `Python's allocated blocks moved by ${l.delta.blocks}`)
    }
    t.ok(after - before < 1024, `daemon RSS ${before} KiB -> ${after} KiB over 20,000 lookups`)
    c.close()
  })

  await t.test('the child going away while the application waits on a lookup: OSError, the daemon serves on', async (t) => {
    const frames = requestFrames({ script: fixture('ssl-vars') })
    frames[0].writeUInt32BE(frames[0].readUInt32BE(8) | 2, 8)
    const c = await d.connect()
    for (const f of frames) c.write(f)
    const f = await c.nextFrame()
    t.equal(f?.type, FrameType.VAR_LOOKUP)
    c.close()
    await d.waitForLog(/OSError: mod_ssl\.var_lookup\(\): the request is over or its connection was closed/)
    const again = await d.connect()
    t.equal(text(await again.request({ script: fixture('daemon-echo'), body: Buffer.from('still here') })), 'still here')
    again.close()
  })

  await t.test('malformed hook and lookup frames drop only their connection', async (t) => {
    const bad = Buffer.from(hook({ arg1: 'spy', arg2: 'secret' }))
    bad.writeUInt32BE(9, 12) // hook number 9
    const c = await d.connect()
    c.write(bad)
    await c.closed()
    await d.waitForLog(/WSGI02040: Malformed data received from Apache child, connection closed: AUTH names unknown hook 9/)

    const frames = requestFrames({ script: fixture('ssl-vars') })
    frames[0].writeUInt32BE(frames[0].readUInt32BE(8) | 2, 8)
    const e = await d.connect()
    for (const f of frames) e.write(f)
    t.equal((await e.nextFrame())?.type, FrameType.VAR_LOOKUP)
    e.write(encodeFrame(FrameType.VAR_VALUE, Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])))
    await e.closed()
    await d.waitForLog(/VAR_VALUE present flag 2 is not 0 or 1/)

    const ok = await d.connect()
    ok.write(hook({ arg1: 'spy', arg2: 'secret' }))
    t.equal((await authResult(ok)).outcome, AuthOutcome.GRANTED, 'the daemon serves on')
    ok.close()
  })

})
