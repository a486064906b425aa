// The wire protocol is written down twice: native/common/wsgi_wire.h (the Apache module and the addon)
// and src/protocol/wire.ts (the daemon). This test compiles a small C program against the header, has
// it print every constant's value, and compares each with its TypeScript counterpart; a constant added
// on one side only fails too.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import * as wire from '../../src/protocol/wire'
import { ROOT } from '../helpers/apache'

const HEADER = join(ROOT, 'native', 'common', 'wsgi_wire.h')

/** Every object-valued export of wire.ts flattened to `Name.KEY`, plus the scalar exports. */
function tsConstants(): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const [name, v] of Object.entries(wire)) {
    if (typeof v === 'number' || typeof v === 'bigint') out.set(name, BigInt(v))
    else if (v !== null && typeof v === 'object' && !(v instanceof Map))
      for (const [k, x] of Object.entries(v as Record<string, unknown>))
        if (typeof x === 'number') out.set(`${name}.${k}`, BigInt(x))
  }
  return out
}

/** The C macro each TypeScript constant mirrors. A TypeScript constant without a C twin is listed
 *  with null (and a reason). */
const PAIRS: Record<string, string | null> = {
  WIRE_VERSION: 'WSGI_WIRE_VERSION',
  HEADER_SIZE: 'WSGI_WIRE_HEADER_SIZE',
  REQUEST_BODY_FOLLOWS: 'WSGI_REQUEST_BODY_FOLLOWS',
  REQUEST_SSL: 'WSGI_REQUEST_SSL',
  REQUEST_RETRYABLE: 'WSGI_REQUEST_RETRYABLE',
  REQUEST_STREAMED: 'WSGI_REQUEST_STREAMED',
  HEAD_ASGI: 'WSGI_HEAD_ASGI',
  ERROR_LOGGED: 'WSGI_ERROR_F_LOGGED',
  OUTPUT_STATUS_SHIFT: 'WSGI_OUT_STATUS_SHIFT',
  REQUEST_UPGRADE: 'WSGI_REQUEST_UPGRADE',
  HEAD_UPGRADE: 'WSGI_HEAD_UPGRADE',
  AUTH_SSL: 'WSGI_AUTH_SSL',
  AUTH_LOOKUP: 'WSGI_AUTH_LOOKUP',
  AUTH_RELOADING: 'WSGI_AUTH_RELOADING',
  AUTH_FIXED_SIZE: 'WSGI_AUTH_FIXED_SIZE',
  VAR_NAME_MAX: 'WSGI_LIMIT_VAR_NAME',
  END_COMPLETE: 'WSGI_END_COMPLETE',
  END_INCOMPLETE: 'WSGI_END_INCOMPLETE',
  FILE_TO_EOF: 'WSGI_FILE_TO_EOF',
  REQUEST_FIXED_SIZE: 'WSGI_REQUEST_FIXED_SIZE',
  'AuthHook.ALLOW_ACCESS': 'WSGI_AUTH_ALLOW_ACCESS',
  'AuthHook.CHECK_PASSWORD': 'WSGI_AUTH_CHECK_PASSWORD',
  'AuthHook.GET_REALM_HASH': 'WSGI_AUTH_GET_REALM_HASH',
  'AuthHook.GROUPS_FOR_USER': 'WSGI_AUTH_GROUPS_FOR_USER',
  'AuthOutcome.DENIED': 'WSGI_AUTH_DENIED',
  'AuthOutcome.GRANTED': 'WSGI_AUTH_GRANTED',
  'AuthOutcome.NOT_FOUND': 'WSGI_AUTH_NOT_FOUND',
  'AuthOutcome.ERROR': 'WSGI_AUTH_ERROR',
  'Limit.REQUEST': 'WSGI_LIMIT_REQUEST',
  'Limit.BODY': 'WSGI_LIMIT_BODY',
  'Limit.RBODY': 'WSGI_LIMIT_RBODY',
  'Limit.END': 'WSGI_LIMIT_END',
  'Limit.FILE': 'WSGI_LIMIT_FILE',
  'Limit.ERROR': 'WSGI_LIMIT_ERROR',
  'Limit.AUTH': 'WSGI_LIMIT_AUTH',
  'Limit.AUTH_RESULT': 'WSGI_LIMIT_AUTH_RESULT',
  'Limit.VAR_LOOKUP': 'WSGI_LIMIT_VAR_LOOKUP',
  'Limit.VAR_VALUE': 'WSGI_LIMIT_VAR_VALUE',
  // The default of header-buffer-size is a configuration default (wsgi_config.h), not a wire constant.
  'Limit.HEAD_DEFAULT': null,
}

/** FrameType.X mirrors WSGI_FRAME_X, and OutputInfo.X (the output event's summary) WSGI_OUT_X. */
function cName(ts: string): string | null {
  if (ts in PAIRS) return PAIRS[ts]
  const [obj, key] = ts.split('.')
  if (obj === 'FrameType') return `WSGI_FRAME_${key}`
  if (obj === 'OutputInfo') return `WSGI_OUT_${key}`
  return undefined as unknown as string
}

/** Object-like macros of the header (not the include guard), in order. */
function cMacros(): string[] {
  const src = readFileSync(HEADER, 'utf8')
  return [...src.matchAll(/^#define\s+(WSGI_[A-Z0-9_]+)\s+\S/gm)].map((m) => m[1]).filter((n) => n !== 'WSGI_WIRE_H')
}

function cValues(names: string[]): Map<string, bigint> {
  return cValuesOf(HEADER, names)
}

/** The values of the macros `names` of `header`, as a C program compiled against it prints them. */
function cValuesOf(header: string, names: string[]): Map<string, bigint> {
  const dir = mkdtempSync(join(tmpdir(), 'wire-agreement-'))
  try {
    const prog = [
      '#include <stdio.h>',
      '#include <stdint.h>',
      `#include "${header.split('/').pop()}"`,
      'int main(void) {',
      ...names.map((n) => `    printf("%s %llu\\n", "${n}", (unsigned long long)(${n}));`),
      '    return 0;',
      '}',
    ].join('\n')
    writeFileSync(join(dir, 'p.c'), prog)
    const cc = spawnSync('cc', ['-Wall', '-I', join(ROOT, 'native', 'common'), '-o', join(dir, 'p'), join(dir, 'p.c')], { encoding: 'utf8' })
    if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`)
    const run = spawnSync(join(dir, 'p'), { encoding: 'utf8' })
    const out = new Map<string, bigint>()
    for (const line of run.stdout.trim().split('\n')) {
      const [n, v] = line.split(' ')
      out.set(n, BigInt(v))
    }
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('every constant of wire.ts has the value of its wsgi_wire.h twin', async (t) => {
  const ts = tsConstants()
  const macros = cMacros()
  const c = cValues(macros)
  const twinned = new Set<string>()
  for (const [name, value] of ts) {
    const twin = cName(name)
    if (twin === undefined) {
      t.fail(`wire.ts exports ${name} with no entry in this test's table: add its C twin (or null with a reason)`)
      continue
    }
    if (twin === null) continue
    twinned.add(twin)
    t.ok(c.has(twin), `${twin} (twin of ${name}) is defined in wsgi_wire.h`)
    if (c.has(twin)) t.equal(c.get(twin), value, `${name} = ${twin}`)
  }
  for (const m of macros) if (!twinned.has(m)) t.fail(`wsgi_wire.h defines ${m} with no twin in wire.ts`)
})

// The board (docs/board.md): native/common/wsgi_board.h and src/protocol/board-layout.ts.
import * as board from '../../src/protocol/board-layout'

const BOARD_HEADER = join(ROOT, 'native', 'common', 'wsgi_board.h')

/** The C macro of a board-layout.ts constant: `BOARD_X` is WSGI_BOARD_X, `BoardHeader.X` is
 *  WSGI_BOARD_H_X, `Slot.X` WSGI_SLOT_X, `SlotState.X` WSGI_STATE_X, `SlotFlag.X` WSGI_SLOT_F_X. */
function boardTwin(ts: string): string {
  const [obj, key] = ts.split('.')
  if (key === undefined) return `WSGI_${obj}`
  return { BoardHeader: 'WSGI_BOARD_H_', Slot: 'WSGI_SLOT_', SlotState: 'WSGI_STATE_', SlotFlag: 'WSGI_SLOT_F_' }[obj] + key
}

function boardConstants(): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const [name, v] of Object.entries(board)) {
    if (typeof v === 'number') out.set(name, BigInt(v))
    else if (v !== null && typeof v === 'object' && !Array.isArray(v))
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'number') out.set(`${name}.${k}`, BigInt(x))
  }
  return out
}

t.test('every constant of board-layout.ts has the value of its wsgi_board.h twin, and the reason words agree', async (t) => {
  const src = readFileSync(BOARD_HEADER, 'utf8')
  const macros = [...src.matchAll(/^#define\s+(WSGI_[A-Z0-9_]+)\s+\S/gm)].map((m) => m[1]).filter((n) => n !== 'WSGI_BOARD_H')
  const c = cValuesOf(BOARD_HEADER, macros)
  const twinned = new Set<string>()
  for (const [name, value] of boardConstants()) {
    const twin = boardTwin(name)
    twinned.add(twin)
    t.ok(c.has(twin), `${twin} (twin of ${name}) is defined in wsgi_board.h`)
    if (c.has(twin)) t.equal(c.get(twin), value, `${name} = ${twin}`)
  }
  // Reasons: WSGI_REASON_<WORD> numbered as REASONS lists the words, and wsgi_reason_name() agrees.
  board.REASONS.forEach((word, i) => {
    const macro = `WSGI_REASON_${word.toUpperCase().replace(/-/g, '_')}`
    twinned.add(macro)
    t.equal(c.get(macro), BigInt(i), `${word} is reason ${i}`)
    t.match(src, new RegExp(`"${word}"`), `wsgi_reason_name knows "${word}"`)
  })
  twinned.add('WSGI_REASON_COUNT')
  t.equal(c.get('WSGI_REASON_COUNT'), BigInt(board.REASONS.length))
  for (const m of macros) if (!twinned.has(m)) t.fail(`wsgi_board.h defines ${m} with no twin in board-layout.ts`)
})

t.test("the histograms' bucket bounds of wsgi_board.h are those of board-layout.ts", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wire-agreement-'))
  try {
    const prog = [
      '#include <stdio.h>',
      '#include "wsgi_board.h"',
      'int main(void) {',
      '    for (int i = 0; i < WSGI_BOARD_BUCKETS - 1; ++i) printf("%.17g\\n", wsgi_board_bounds[i]);',
      '    return 0;',
      '}',
    ].join('\n')
    writeFileSync(join(dir, 'b.c'), prog)
    const cc = spawnSync('cc', ['-Wall', '-I', join(ROOT, 'native', 'common'), '-o', join(dir, 'b'), join(dir, 'b.c')], { encoding: 'utf8' })
    t.equal(cc.status, 0, `compiles: ${cc.stderr}`)
    const c = spawnSync(join(dir, 'b'), { encoding: 'utf8' }).stdout.trim().split('\n').map(Number)
    t.same(c, [...board.BUCKET_BOUNDS], 'the same bounds, in the same order')
    t.equal(board.BUCKET_BOUNDS.length, board.BOARD_BUCKETS - 1, 'one bound per bucket but the last (+Inf)')
    t.ok(board.BUCKET_BOUNDS.every((b, i) => i === 0 || b > board.BUCKET_BOUNDS[i - 1]), 'increasing')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
