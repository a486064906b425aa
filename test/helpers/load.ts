// A closed-loop HTTP load generator for the reliability tests: `connections` clients, each sending its
// next request as soon as the previous one ended, over keep-alive connections, for a fixed time. Unlike
// wrk it keeps every request's outcome (start, end, status, how it failed), so a test can say which
// requests failed, when, and why. Loopback only.
import * as http from 'node:http'

export type Failure =
  /** A keep-alive connection that Apache closed while the request was being sent, before any byte of a
   *  response: a client may retry it (RFC 9112 9.3.1), browsers and most HTTP libraries do. */
  | 'keepalive-closed'
  /** Any other connection error (reset, cut short mid-response). */
  | 'error'
  /** No complete answer within the client's timeout. */
  | 'timeout'

export interface Sample {
  /** ms since the run began. */
  start: number
  end: number
  /** 0 when there was no response. */
  status: number
  failure?: Failure
  /** The request went out on a connection that had carried an earlier request. */
  reused: boolean
  body: string
}

export interface LoadOptions {
  port: number
  /** The path of each request; a function to vary it (n counts requests of this client). */
  path: string | ((client: number, n: number) => string)
  connections: number
  /** How long the load runs at most. */
  durationMs: number
  /** Ends the load early once it returns true (checked about every 50 ms). */
  until?: () => boolean
  /** A request with no answer after this long counts as 'timeout'. */
  timeoutMs?: number
  /** Called with the elapsed ms about every 50 ms while the load runs (to inject a fault). */
  onTick?: (elapsedMs: number) => void | Promise<void>
  /** Keep the response body (e.g. a pid) in the samples; off by default. */
  keepBody?: boolean
  headers?: Record<string, string>
}

export interface LoadResult {
  samples: Sample[]
  /** When the run began (Date.now()). */
  t0: number
  durationMs: number
}

function oneRequest(agent: http.Agent, o: LoadOptions, path: string, t0: number): Promise<Sample> {
  return new Promise((resolve) => {
    const start = Date.now() - t0
    let reused = false
    let settled = false
    const done = (s: Omit<Sample, 'start' | 'end' | 'reused'>) => {
      if (settled) return
      settled = true
      resolve({ start, end: Date.now() - t0, reused, ...s })
    }
    const req = http.request({ host: '127.0.0.1', port: o.port, path, agent, headers: o.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => {
        if (o.keepBody) chunks.push(c)
      })
      res.on('error', () => done({ status: res.statusCode ?? 0, failure: 'error', body: '' }))
      res.on('aborted', () => done({ status: res.statusCode ?? 0, failure: 'error', body: '' }))
      res.on('end', () => {
        if (res.complete) done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1') })
        else done({ status: res.statusCode ?? 0, failure: 'error', body: '' })
      })
    })
    req.on('socket', () => {
      reused = req.reusedSocket
    })
    req.setTimeout(o.timeoutMs ?? 30000, () => {
      done({ status: 0, failure: 'timeout', body: '' })
      req.destroy()
    })
    req.on('error', () => {
      // A reused connection that ends before any response byte: Apache closed an idle keep-alive
      // connection (graceful restart, KeepAliveTimeout) as we sent on it.
      done({ status: 0, failure: reused ? 'keepalive-closed' : 'error', body: '' })
    })
    req.end()
  })
}

/** Runs the load; resolves when every client has finished its last request. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections, maxFreeSockets: o.connections })
  const t0 = Date.now()
  const samples: Sample[] = []
  let stop = false
  const client = async (i: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      const path = typeof o.path === 'function' ? o.path(i, n) : o.path
      samples.push(await oneRequest(agent, o, path, t0))
    }
  }
  let ticking: Promise<void> = Promise.resolve()
  const ticker = setInterval(() => {
    const elapsed = Date.now() - t0
    if (elapsed >= o.durationMs || o.until?.()) stop = true
    if (o.onTick) ticking = ticking.then(() => o.onTick?.(elapsed)).catch(() => {})
  }, 50)
  try {
    await Promise.all(Array.from({ length: o.connections }, (_, i) => client(i)))
    await ticking
  } finally {
    clearInterval(ticker)
    agent.destroy()
  }
  samples.sort((a, b) => a.start - b.start)
  return { samples, t0, durationMs: Date.now() - t0 }
}

/** The p-th percentile (0..100) of the values, nearest rank; 0 for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

export interface Summary {
  total: number
  ok: number
  byStatus: Record<string, number>
  byFailure: Record<string, number>
  p50: number
  p99: number
  max: number
}

/** Counts by status and failure; latencies (ms) of the requests `ok` accepts (default: 2xx). */
export function summarise(samples: Sample[], ok: (s: Sample) => boolean = (s) => !s.failure && s.status >= 200 && s.status < 300): Summary {
  const byStatus: Record<string, number> = {}
  const byFailure: Record<string, number> = {}
  const lat: number[] = []
  let n = 0
  for (const s of samples) {
    if (s.failure) byFailure[s.failure] = (byFailure[s.failure] ?? 0) + 1
    else byStatus[String(s.status)] = (byStatus[String(s.status)] ?? 0) + 1
    if (ok(s)) {
      n++
      lat.push(s.end - s.start)
    }
  }
  return { total: samples.length, ok: n, byStatus, byFailure, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.length ? Math.max(...lat) : 0 }
}
