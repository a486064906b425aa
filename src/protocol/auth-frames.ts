// Encoding and decoding of the hook and variable-lookup frames (docs/protocol.md, "Hooks" and
// "Variable lookups"): AUTH and VAR_VALUE (child -> daemon), AUTH_RESULT and VAR_LOOKUP (daemon -> child).
// Pure functions over Buffers, no I/O; strings are bytes, JS strings are written as ISO-8859-1.
import { PayloadReader, encodeFrame, writeHeader, type Bytes } from './frames'
import { ProtocolError } from './protocol-error'
import {
  AUTH_FIXED_SIZE,
  AUTH_LOOKUP,
  AUTH_RELOADING,
  AUTH_SSL,
  AuthHook,
  AuthOutcome,
  FrameType,
  HEADER_SIZE,
  VAR_NAME_MAX,
} from './wire'

const U32 = 0x1_0000_0000
const HOOKS = new Set<number>(Object.values(AuthHook))
const OUTCOMES = new Set<number>(Object.values(AuthOutcome))

function latin1(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'latin1') : b
}

/** Packs `u32 length` + bytes for each item, in order. */
function strings(items: Bytes[]): Buffer {
  const bufs = items.map(latin1)
  const out = Buffer.allocUnsafe(bufs.reduce((n, b) => n + 4 + b.length, 0))
  let off = 0
  for (const b of bufs) {
    out.writeUInt32BE(b.length, off)
    b.copy(out, off + 4)
    off += 4 + b.length
  }
  return out
}

// ---------------------------------------------------------------------------------------------------
// AUTH

export interface AuthFixed {
  /** The client connection is SSL (mod_ssl.is_https() answers 1). */
  ssl: boolean
  /** The child answers VAR_LOOKUP (an SSL module is loaded in Apache). */
  lookup: boolean
  /** WSGIScriptReloading On. */
  reloading: boolean
  hook: number
  requestStartUs: number
}

/** Reads the fixed part of an AUTH payload: all the daemon itself needs (the addon parses the rest). */
export function readAuthFixed(payload: Buffer): AuthFixed {
  if (payload.length < AUTH_FIXED_SIZE)
    throw new ProtocolError('malformed', `AUTH payload of ${payload.length} bytes is shorter than its fixed part`)
  const flags = payload.readUInt32BE(0)
  if ((flags & ~(AUTH_SSL | AUTH_LOOKUP | AUTH_RELOADING)) !== 0)
    throw new ProtocolError('malformed', `AUTH has reserved flag bits set (0x${(flags >>> 0).toString(16)})`)
  const hook = payload.readUInt32BE(4)
  if (!HOOKS.has(hook)) throw new ProtocolError('malformed', `AUTH names unknown hook ${hook}`)
  return {
    ssl: (flags & AUTH_SSL) !== 0,
    lookup: (flags & AUTH_LOOKUP) !== 0,
    reloading: (flags & AUTH_RELOADING) !== 0,
    hook,
    requestStartUs: payload.readUInt32BE(8) * U32 + payload.readUInt32BE(12),
  }
}

export interface AuthInit {
  ssl?: boolean
  lookup?: boolean
  reloading?: boolean
  hook: number
  requestStartUs?: number
  script: Bytes
  applicationGroup: Bytes
  /** allow_access: the host; the others: the user. */
  arg1: Bytes
  /** check_password: the password; get_realm_hash: the realm; else empty. */
  arg2?: Bytes
  vars: Iterable<readonly [Bytes, Bytes]>
}

export interface DecodedAuth extends AuthFixed {
  script: string
  applicationGroup: string
  arg1: string
  arg2: string
  vars: Array<[string, string]>
}

export function encodeAuthPayload(init: AuthInit): Buffer {
  const fixed = Buffer.allocUnsafe(AUTH_FIXED_SIZE)
  fixed.writeUInt32BE((init.ssl ? AUTH_SSL : 0) | (init.lookup ? AUTH_LOOKUP : 0) | (init.reloading ? AUTH_RELOADING : 0), 0)
  fixed.writeUInt32BE(init.hook, 4)
  const start = BigInt(Math.floor(init.requestStartUs ?? Date.now() * 1000))
  fixed.writeUInt32BE(Number(start >> 32n) >>> 0, 8)
  fixed.writeUInt32BE(Number(start & 0xffffffffn) >>> 0, 12)
  const vars = [...init.vars]
  const count = Buffer.allocUnsafe(4)
  count.writeUInt32BE(vars.length, 0)
  return Buffer.concat([
    fixed,
    strings([init.script, init.applicationGroup, init.arg1, init.arg2 ?? '']),
    count,
    strings(vars.flatMap(([n, v]) => [n, v])),
  ])
}

export function encodeAuth(init: AuthInit): Buffer {
  return encodeFrame(FrameType.AUTH, encodeAuthPayload(init))
}

/** Full decode of an AUTH payload (tests, tools, and the daemon's log lines). */
export function decodeAuth(payload: Buffer): DecodedAuth {
  const fixed = readAuthFixed(payload)
  const r = new PayloadReader(payload.subarray(AUTH_FIXED_SIZE), 'AUTH')
  const text = (field: string) => r.bytes(field).toString('latin1')
  const script = text('script')
  const applicationGroup = text('application group')
  const arg1 = text('first argument')
  const arg2 = text('second argument')
  const count = r.u32('variable count')
  if (count > r.remaining / 8) throw new ProtocolError('malformed', `AUTH declares ${count} variables, more than its payload can hold`)
  const vars: Array<[string, string]> = []
  for (let i = 0; i < count; i++) vars.push([text('variable name'), text('variable value')])
  r.end()
  return { ...fixed, script, applicationGroup, arg1, arg2, vars }
}

/** For log lines: the REQUEST_URI of an AUTH payload (else its script), undefined when malformed. */
export function hookUri(payload: Buffer): string | undefined {
  try {
    const a = decodeAuth(payload)
    return a.vars.find(([n]) => n === 'REQUEST_URI')?.[1] ?? a.script
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------------
// AUTH_RESULT

export interface AuthResult {
  outcome: number
  /** GRANTED: the user name (check_password), the hash (get_realm_hash) or the groups; else empty. */
  values: string[]
}

export function encodeAuthResult(outcome: number, values: Bytes[] = []): Buffer {
  const head = Buffer.allocUnsafe(8)
  head.writeUInt32BE(outcome, 0)
  head.writeUInt32BE(values.length, 4)
  return encodeFrame(FrameType.AUTH_RESULT, Buffer.concat([head, strings(values)]))
}

export function decodeAuthResult(payload: Buffer): AuthResult {
  const r = new PayloadReader(payload, 'AUTH_RESULT')
  const outcome = r.u32('outcome')
  if (!OUTCOMES.has(outcome)) throw new ProtocolError('malformed', `AUTH_RESULT outcome ${outcome} is unknown`)
  const count = r.u32('value count')
  if (count > r.remaining / 4) throw new ProtocolError('malformed', `AUTH_RESULT declares ${count} values, more than its payload can hold`)
  const values: string[] = []
  for (let i = 0; i < count; i++) values.push(r.bytes('value').toString('latin1'))
  r.end()
  return { outcome, values }
}

// ---------------------------------------------------------------------------------------------------
// VAR_LOOKUP and VAR_VALUE

export function encodeVarLookup(name: Bytes): Buffer {
  const n = latin1(name)
  if (n.length === 0 || n.length > VAR_NAME_MAX) throw new RangeError(`variable name of ${n.length} bytes`)
  return encodeFrame(FrameType.VAR_LOOKUP, strings([n]))
}

export function decodeVarLookup(payload: Buffer): string {
  const r = new PayloadReader(payload, 'VAR_LOOKUP')
  const name = r.bytes('name')
  r.end()
  if (name.length === 0 || name.length > VAR_NAME_MAX || name.includes(0))
    throw new ProtocolError('malformed', 'VAR_LOOKUP name is empty, too long or contains NUL')
  return name.toString('latin1')
}

/** `value` null: the variable does not exist (mod_ssl.var_lookup() returns None). */
export function encodeVarValue(value: Bytes | null): Buffer {
  const v = value === null ? Buffer.alloc(0) : latin1(value)
  const out = Buffer.allocUnsafe(HEADER_SIZE + 8 + v.length)
  writeHeader(out, 0, FrameType.VAR_VALUE, 8 + v.length)
  out.writeUInt32BE(value === null ? 0 : 1, HEADER_SIZE)
  out.writeUInt32BE(v.length, HEADER_SIZE + 4)
  v.copy(out, HEADER_SIZE + 8)
  return out
}

/** The value as bytes (a view into the payload), or null when the variable does not exist. */
export function decodeVarValue(payload: Buffer): Buffer | null {
  const r = new PayloadReader(payload, 'VAR_VALUE')
  const present = r.u32('present')
  const value = r.bytes('value')
  r.end()
  if (present > 1) throw new ProtocolError('malformed', `VAR_VALUE present flag ${present} is not 0 or 1`)
  if (present === 0 && value.length !== 0) throw new ProtocolError('malformed', 'VAR_VALUE has a value but says it is absent')
  return present === 1 ? value : null
}
