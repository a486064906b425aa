// Issue 7, bad wire data: libFuzzer on the Apache module's C decoder of what a daemon sends (the response
// relay, its variable lookups, the hook exchange), compiled unchanged from native/apache with
// AddressSanitizer and UBSan (test/fuzz/c/relay_fuzz.c stubs what Apache's binary provides). Seeds are
// valid daemon output made with the TypeScript encoders; inputs that once failed are replayed first
// (test/fuzz/c/regressions). Bounded for CI by FUZZ_C_SECONDS (default 20); any crash, leak, sanitizer
// report, timeout or out-of-memory fails the test with the input that caused it.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { encodeAuthResult, encodeVarLookup } from '../../src/protocol/auth-frames'
import { encodeEnd, encodeError, encodeFile, encodeFrame, encodeHead, encodeResponseBody } from '../../src/protocol/frames'
import { FILE_TO_EOF, FrameType } from '../../src/protocol/wire'
import { makeTempDir, ROOT } from '../helpers/apache'

const CLANG = ['clang-14', 'clang'].map((c) => spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'latin1' }).stdout.trim()).find(Boolean)
const SECONDS = Number(process.env.FUZZ_C_SECONDS ?? 20)
const NATIVE = join(ROOT, 'native')
const HARNESS = join(ROOT, 'test', 'fuzz', 'c', 'relay_fuzz.c')
const REGRESSIONS = join(ROOT, 'test', 'fuzz', 'c', 'regressions')

function libFuzzerMissing(): string | false {
  if (!CLANG) return 'clang is not installed (apt-get install clang-14 libclang-rt-14-dev)'
  const probe = spawnSync(CLANG, ['-fsanitize=fuzzer', '-x', 'c', '-', '-o', '/dev/null'], {
    input: 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }',
    encoding: 'latin1',
  })
  return probe.status === 0 ? false : `libFuzzer is missing (apt-get install libclang-rt-14-dev): ${probe.stderr.slice(0, 200)}`
}

/** Byte 0: path (0 relay, 1 relay over SSL, 2 hook exchange) and flags; byte 1: header-buffer-size. */
function seed(mode: number, hbs: number, ...frames: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([mode, hbs]), ...frames])
}

function seeds(): Record<string, Buffer> {
  const head = (status: number, headers: Array<[string, string]> = []) => encodeHead(status, `${status} X`, headers)
  return {
    ok: seed(0, 1, head(200, [['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]), encodeResponseBody('hello'), encodeEnd()),
    'many-bodies': seed(0, 1, head(200), ...Array.from({ length: 20 }, (_, i) => encodeResponseBody(Buffer.alloc(1 + i * 97, i))), encodeEnd()),
    'big-body': seed(0, 1, head(200), encodeResponseBody(Buffer.alloc(70000, 0x61)), encodeEnd()),
    incomplete: seed(0, 1, head(200), encodeResponseBody('part'), encodeEnd(1)),
    'ssl-lookups': seed(1, 1, encodeVarLookup('SSL_PROTOCOL'), head(200), encodeVarLookup('HTTPS'), encodeResponseBody('x'), encodeVarLookup('LONG'), encodeEnd()),
    error: seed(0, 1, encodeError(503, 'Service Unavailable: queue timeout')),
    goaway: seed(0, 1, encodeFrame(FrameType.GOAWAY)),
    'goaway-after-body': seed(0x40, 1, encodeFrame(FrameType.GOAWAY)),
    file: seed(0x10, 1, head(200, [['Content-Length', '3']]), encodeFile(0, 3), encodeEnd()),
    'file-to-eof-sendfile': seed(0x30, 1, head(200), encodeFile(1, FILE_TO_EOF), encodeEnd()),
    'file-without-fd': seed(0, 1, head(200), encodeFile(0, 10), encodeEnd()),
    redirect: seed(0, 1, head(200, [['Location', '/elsewhere']]), encodeResponseBody('ignored'), encodeEnd()),
    'error-override': seed(0x08, 1, head(404, [['X-A', 'b']]), encodeResponseBody('nf'), encodeEnd()),
    'special-headers': seed(0, 1, head(200, [['Last-Modified', 'Tue, 24 Nov 2026 10:00:00 GMT'], ['WWW-Authenticate', 'Basic realm="r"'], ['Connection', 'close'], ['Content-Type', 'Text/HTML; Charset=UTF-8']])),
    'large-head': seed(0, 3, head(200, [['X-Big', 'h'.repeat(100000)]]), encodeEnd()),
    'oversized-line': seed(0, 0, head(200, [['X-Big', 'h'.repeat(9000)]]), encodeEnd()),
    'client-gone': seed(0x04, 1, head(200), encodeResponseBody(Buffer.alloc(5000, 1)), encodeEnd()),
    'auth-granted': seed(2, 1, encodeAuthResult(1, ['alice'])),
    'auth-groups': seed(2, 1, encodeVarLookup('SSL_CLIENT_S_DN'), encodeAuthResult(1, ['a', 'b', 'c'])),
    'auth-error': seed(2, 1, encodeError(503, 'busy')),
    'auth-goaway': seed(2, 1, encodeFrame(FrameType.GOAWAY)),
  }
}

t.test('libFuzzer on the C decoder of daemon output: no crash, hang, leak or unbounded allocation', { skip: libFuzzerMissing() }, async (t) => {
  const dir = makeTempDir('mod_wsgi-cfuzz-')
  t.teardown(() => {
    if (t.passing()) spawnSync('rm', ['-rf', dir])
  })
  const bin = join(dir, 'relay_fuzz')
  const sources = ['wsgi_response.c', 'wsgi_conn.c', 'wsgi_lookup.c', 'wsgi_asgi.c'].map((f) => join(NATIVE, 'apache', f))
  // stddef.h first: APR then uses offsetof() instead of a member access through NULL, which UBSan
  // would report (in APR's ring macros, not in our code).
  const flags = ['-g', '-O1', '-include', 'stddef.h', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined']
  const includes = ['/usr/include/apache2', '/usr/include/apr-1.0', join(NATIVE, 'common'), join(NATIVE, 'apache')].map((i) => `-I${i}`)
  const built = spawnSync(CLANG as string, [...flags, ...includes, '-DLINUX', '-D_REENTRANT', '-D_GNU_SOURCE', HARNESS, ...sources, '-lapr-1', '-laprutil-1', '-o', bin], {
    encoding: 'latin1',
    timeout: 120000,
  })
  t.equal(built.status, 0, `the harness builds: ${built.stderr.slice(0, 2000)}`)
  if (built.status !== 0) return

  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' }
  const regressions = existsSync(REGRESSIONS) ? readdirSync(REGRESSIONS).map((f) => join(REGRESSIONS, f)) : []
  if (regressions.length > 0) {
    const replay = spawnSync(bin, ['-timeout=10', '-rss_limit_mb=1024', ...regressions], { encoding: 'latin1', env, timeout: 60000 })
    t.equal(replay.status, 0, `inputs that once failed pass now (${regressions.length}): ${replay.stderr.slice(-1500)}`)
  }

  const corpus = join(dir, 'corpus')
  mkdirSync(corpus)
  for (const [name, data] of Object.entries(seeds())) writeFileSync(join(corpus, name), data)
  const run = spawnSync(
    bin,
    [`-max_total_time=${SECONDS}`, '-max_len=262144', '-timeout=10', '-rss_limit_mb=1024', '-malloc_limit_mb=512', '-print_final_stats=1', `-artifact_prefix=${dir}/`, corpus],
    { encoding: 'latin1', env, timeout: (SECONDS + 60) * 1000 },
  )
  const out = run.stderr
  const runs = /stat::number_of_executed_units:\s*(\d+)/.exec(out)?.[1] ?? '?'
  const cov = /cov: (\d+) ft: (\d+)/g
  let last: RegExpExecArray | null = null
  for (let m = cov.exec(out); m; m = cov.exec(out)) last = m
  t.comment(`libFuzzer: ${runs} inputs in ${SECONDS} s, coverage ${last?.[1] ?? '?'} edges / ${last?.[2] ?? '?'} features; artifacts in ${dir}`)
  t.equal(run.status, 0, `no crash, sanitizer report, timeout or out-of-memory: ${run.status === 0 ? 'clean' : out.slice(-3000)}`)
  t.notMatch(out, /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|relay_fuzz: .* reached/, 'no sanitizer finding')
  t.ok(Number(runs) > 1000, `it ran (${runs} inputs)`)
})
