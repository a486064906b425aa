// Runs in a child process started by harness.ts (Python can be initialised once per process).
// It plays a minimal daemon: submits REQUEST payloads, feeds bodies with the input watermarks,
// collects and checks the output frames, and reports results to the parent over IPC.
import { createHash } from 'node:crypto'
import { closeSync, fstatSync, readFileSync, readSync } from 'node:fs'

import { openBridge, processControl } from '../../src/native/index'
import type { Bridge, PythonOptions } from '../../src/native/index'
import { FRAME, makeBody, parseError, parseFrames, parseHead } from './wire'
import type { Frame, Head } from './wire'

export interface RunSpec {
  id?: number
  payload: string // base64 REQUEST payload
  body?: { size: number; chunk?: number } | { base64: string; chunk?: number } | { repeat: number; chunk?: number }
  /** Return true from the output handler for every event and resume after holdMs. */
  pauseOutput?: { holdMs: number }
  /** Feed this many body bytes, then abort instead of ending the input. */
  abortAfterInput?: number
  /** Abort once this many response body bytes arrived. */
  abortAfterOutput?: number
  abortAfterMs?: number
  /** Feed the body but never end it (the app waits for more). */
  keepInputOpen?: boolean
  /** Response body bytes kept (base64) in the result. */
  keepBody?: number
  /** Hand every event's data back with bridge.release() once read (as the daemon does once written). */
  releaseOutput?: boolean
}

export interface RunResult {
  id: number
  head?: Head
  body: string
  bodyLength: number
  bodySha256: string
  end?: number
  error?: { status: number; message: string }
  /** The request was not run: GOAWAY (its script changed in a daemon process group). */
  goaway?: boolean
  events: number
  fileFrames: number
  violations: string[]
  elapsedMs: number
  inputPauses: number
  inputResumes: number
  maxPausedBytes: number
  maxEventBytes: number
  /** With releaseOutput: events whose data was emptied by bridge.release(). */
  released: number
}

interface State {
  spec: RunSpec
  result: RunResult
  hash: ReturnType<typeof createHash>
  kept: Buffer[]
  keptBytes: number
  start: number
  paused: boolean
  pausedBytes: number
  done: (r: RunResult) => void
  resumeWaiter?: () => void
  finished: boolean
}

let bridge: Bridge | undefined
const states = new Map<number, State>()
let nextId = 1

function addBody(st: State, data: Buffer): void {
  st.hash.update(data)
  st.result.bodyLength += data.length
  const keep = st.spec.keepBody ?? 65536
  if (st.keptBytes < keep) {
    const view = data.subarray(0, keep - st.keptBytes)
    const part = st.spec.releaseOutput ? Buffer.from(view) : view
    st.kept.push(part)
    st.keptBytes += part.length
  }
}

function readFileFrame(st: State, payload: Buffer, fd: number): void {
  const offset = Number(payload.readBigUInt64BE(0))
  const count = payload.readBigUInt64BE(8)
  try {
    const size = fstatSync(fd).size
    const n = count === 0xffffffffffffffffn ? size - offset : Number(count)
    const buf = Buffer.alloc(n)
    let got = 0
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, offset + got)
      if (r === 0) break
      got += r
    }
    addBody(st, buf.subarray(0, got))
  } finally {
    closeSync(fd)
  }
}

function onOutput(id: number, data: Buffer, final: boolean, fd: number): boolean {
  if (benchHook) {
    benchHook(id, final)
    return false
  }
  const st = states.get(id)
  if (!st) {
    if (fd >= 0) closeSync(fd)
    process.send?.({ op: 'stray', id })
    return false
  }
  const r = st.result
  r.events++
  r.maxEventBytes = Math.max(r.maxEventBytes, data.length)
  if (st.finished) r.violations.push('event after the final one')
  let frames: Frame[]
  try {
    frames = parseFrames(data)
  } catch (e) {
    r.violations.push(`event is not whole frames: ${(e as Error).message}`)
    frames = []
  }
  if (fd >= 0 && (frames.length !== 1 || frames[0].type !== FRAME.FILE)) r.violations.push('descriptor without a lone FILE frame')
  let bodyBytes = 0
  for (const f of frames) {
    switch (f.type) {
      case FRAME.HEAD:
        if (r.head) r.violations.push('second HEAD')
        r.head = parseHead(f.payload)
        break
      case FRAME.RBODY:
        if (!r.head) r.violations.push('BODY before HEAD')
        if (f.payload.length === 0) r.violations.push('empty BODY frame')
        addBody(st, f.payload)
        bodyBytes += f.payload.length
        break
      case FRAME.FILE:
        r.fileFrames++
        if (fd < 0) r.violations.push('FILE frame without a descriptor')
        else readFileFrame(st, f.payload, fd)
        break
      case FRAME.END:
        r.end = f.payload.readUInt32BE(0)
        if (!final) r.violations.push('END in a non-final event')
        break
      case FRAME.ERROR:
        if (r.head) r.violations.push('ERROR after HEAD')
        r.error = parseError(f.payload)
        if (!final) r.violations.push('ERROR in a non-final event')
        break
      case FRAME.GOAWAY:
        if (r.head || !final || frames.length !== 1) r.violations.push('GOAWAY not alone in the final event')
        r.goaway = true
        break
      default:
        r.violations.push(`unexpected frame type ${f.type}`)
    }
  }
  if (st.paused) st.pausedBytes += bodyBytes
  if (st.spec.releaseOutput && data.length > 1) {
    // A view into the data is not the event's Buffer: left alone. The Buffer itself is emptied.
    const view = data.subarray(1)
    bridge!.release(view)
    if (view.length !== data.length - 1) r.violations.push('release() emptied a view of the data')
    bridge!.release(data)
    if (data.length === 0) r.released++
  }
  if (final) {
    if (r.end === undefined && !r.error && !r.goaway) r.violations.push('final event without END, ERROR or GOAWAY')
    st.finished = true
    r.elapsedMs = performance.now() - st.start
    r.body = Buffer.concat(st.kept).toString('base64')
    r.bodySha256 = st.hash.digest('hex')
    r.maxPausedBytes = Math.max(r.maxPausedBytes, st.pausedBytes)
    states.delete(id)
    st.resumeWaiter?.()
    st.done(r)
    return false
  }
  if (st.spec.abortAfterOutput !== undefined && r.bodyLength >= st.spec.abortAfterOutput) {
    bridge!.abort(id)
  }
  if (st.spec.pauseOutput) {
    if (!st.paused) {
      st.paused = true
      st.pausedBytes = 0
      setTimeout(() => {
        r.maxPausedBytes = Math.max(r.maxPausedBytes, st.pausedBytes)
        st.paused = false
        bridge!.resume(id)
      }, st.spec.pauseOutput.holdMs)
    }
    return true
  }
  return false
}

function onInputResume(id: number): void {
  const st = states.get(id)
  if (!st) return
  st.result.inputResumes++
  const w = st.resumeWaiter
  st.resumeWaiter = undefined
  w?.()
}

async function feed(id: number, st: State, body: Buffer, chunk: number, length?: number): Promise<void> {
  let off = 0
  const total = length ?? body.length
  while (off < total && !st.finished) {
    if (st.spec.abortAfterInput !== undefined && off >= st.spec.abortAfterInput) {
      bridge!.abort(id)
      return
    }
    const piece = length === undefined ? body.subarray(off, off + chunk) : body.subarray(0, Math.min(body.length, total - off))
    off += piece.length
    const buffered = bridge!.input(id, piece)
    if (buffered > 256 * 1024) {
      st.result.inputPauses++
      await new Promise<void>((resolve) => {
        st.resumeWaiter = resolve
      })
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }
  if (st.spec.abortAfterInput !== undefined && !st.finished) {
    bridge!.abort(id)
    return
  }
  if (!st.finished && !st.spec.keepInputOpen) bridge!.endInput(id)
}

function run(spec: RunSpec): Promise<RunResult> {
  const id = spec.id ?? nextId++
  const payload = Buffer.from(spec.payload, 'base64')
  let body: Buffer | undefined
  let length: number | undefined
  if (spec.body) {
    if ('base64' in spec.body) body = Buffer.from(spec.body.base64, 'base64')
    else if ('repeat' in spec.body) {
      // A huge body without holding it: one block of makeBody() sent again and again.
      body = makeBody(spec.body.chunk ?? 65536)
      length = spec.body.repeat
    } else body = makeBody(spec.body.size)
  }
  return new Promise((resolve, reject) => {
    const st: State = {
      spec,
      result: {
        id,
        body: '',
        bodyLength: 0,
        bodySha256: '',
        events: 0,
        fileFrames: 0,
        violations: [],
        elapsedMs: 0,
        inputPauses: 0,
        inputResumes: 0,
        maxPausedBytes: 0,
        maxEventBytes: 0,
        released: 0,
      },
      hash: createHash('sha256'),
      kept: [],
      keptBytes: 0,
      start: performance.now(),
      paused: false,
      pausedBytes: 0,
      done: resolve,
      finished: false,
    }
    states.set(id, st)
    try {
      bridge!.submit(id, payload, body !== undefined)
    } catch (e) {
      states.delete(id)
      reject(e)
      return
    }
    if (spec.abortAfterMs !== undefined) setTimeout(() => bridge!.abort(id), spec.abortAfterMs)
    if (body) void feed(id, st, body, spec.body?.chunk ?? 65536, length)
  })
}

// While set, output goes here instead of the checking collector (lean loop for measuring).
let benchHook: ((id: number, final: boolean) => void) | undefined

// Sequential hello-world round trips with a trivial output handler: CPU of the whole process
// (JavaScript thread and worker) and wall time per request.
async function bench(payload64: string, n: number): Promise<{ cpuUs: number; wallUs: number }> {
  const payload = Buffer.from(payload64, 'base64')
  const loop = (count: number) =>
    new Promise<void>((resolve) => {
      let left = count
      benchHook = (id, final) => {
        if (!final) return
        if (--left === 0) {
          benchHook = undefined
          resolve()
        } else bridge!.submit(id, payload, false)
      }
      bridge!.submit(1e9, payload, false)
    })
  await loop(500)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await loop(n)
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  return { cpuUs: (cpu.user + cpu.system) / n, wallUs: (wall * 1000) / n }
}

interface Message {
  seq: number
  op: string
  [key: string]: unknown
}

async function handle(msg: Message): Promise<unknown> {
  switch (msg.op) {
    case 'open':
      if (msg.rlimitAsExtra) {
        // Relative to what this process (with the test runner's TypeScript loader) already maps.
        const vm = /VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
        processControl.setrlimit('as', Number(vm![1]) * 1024 + (msg.rlimitAsExtra as number), Infinity)
      }
      if (msg.arenaMax) processControl.setMallocArenaMax(msg.arenaMax as number)
      bridge = openBridge(msg.options as Partial<PythonOptions>, { output: onOutput, inputResume: onInputResume })
      return { pid: process.pid }
    case 'run':
      return run(msg.spec as RunSpec)
    case 'runAll': {
      const t0 = performance.now()
      const results = await Promise.all((msg.specs as RunSpec[]).map(run))
      return { results, elapsedMs: performance.now() - t0 }
    }
    case 'preload':
      try {
        await bridge!.preload(msg.script as string, msg.group as string)
        return { ok: true }
      } catch (e) {
        return { ok: false, error: (e as Error).message }
      }
    case 'mark':
      // Written after everything the addon logged so far (same descriptor, synchronous writes).
      process.stderr.write(`${msg.text as string}\n`)
      return {}
    case 'lastGil':
      return { lastGil: bridge!.lastGilAcquired(), now: Date.now() }
    case 'dumpStacks':
      bridge!.dumpStacks(msg.reason as string)
      return {}
    case 'bench':
      return bench(msg.payload as string, msg.n as number)
    case 'shutdown': {
      const t0 = performance.now()
      const result = bridge!.shutdown(msg.timeoutMs as number)
      const again = bridge!.shutdown(msg.timeoutMs as number)
      return { result, again, elapsedMs: performance.now() - t0 }
    }
    case 'exit':
      setImmediate(() => process.exit(msg.code as number))
      return {}
    case 'leave':
      // Let the event loop run empty: the process ends the natural way (environment cleanup hook).
      setImmediate(() => process.disconnect())
      return {}
    case 'submitAfter':
      try {
        bridge!.submit(99999, Buffer.alloc(16), false)
        return { threw: false }
      } catch (e) {
        return { threw: true, message: (e as Error).message }
      }
    default:
      throw new Error(`unknown op ${msg.op}`)
  }
}

// Only harness.ts starts this file; run any other way (say, by a test runner), it has nothing to do.
if (!process.send || process.env.MOD_WSGI_ADDON_DRIVER !== '1') process.exit(0)

process.on('message', (msg: Message) => {
  handle(msg).then(
    (value) => process.send?.({ seq: msg.seq, value }),
    (e: Error) => process.send?.({ seq: msg.seq, error: e.message }),
  )
})
process.send?.({ op: 'ready' })
