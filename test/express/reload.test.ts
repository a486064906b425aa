// --reload-on-changes: a change to the source file of any imported module restarts the daemon within
// about a second; the files are watched (inotify), not polled. Through a real Apache, and the monitor
// (python/mod_wsgi/server/reloader.py) on its own.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { PYTHON, request, ROOT, sleep, waitFor } from '../helpers/apache'
import { startExpress, tempDir } from './express-helpers'

/** An app whose answer comes from two modules: one imported with the script, one on the first request. */
function makeApp(t: Test): string {
  const dir = tempDir(t, 'mod_wsgi-reload-')
  writeFileSync(join(dir, 'helper.py'), "TEXT = 'helper-one'\n")
  writeFileSync(join(dir, 'lazy.py'), "TEXT = 'lazy-one'\n")
  writeFileSync(
    join(dir, 'app.wsgi'),
    [
      'import os',
      'import helper',
      '',
      'def application(environ, start_response):',
      '    import lazy',
      "    body = ('%s %s %d' % (helper.TEXT, lazy.TEXT, os.getpid())).encode()",
      "    start_response('200 OK', [('Content-Type', 'text/plain')])",
      '    return [body]',
      '',
    ].join('\n'),
  )
  return dir
}

async function answer(port: number): Promise<{ helper: string; lazy: string; pid: number }> {
  const [helper, lazy, pid] = (await request(port, '/')).text.split(' ')
  return { helper, lazy, pid: Number(pid) }
}

/** Polls until the answer satisfies `ok`; returns it and how long it took. */
async function until(port: number, ok: (a: { helper: string; lazy: string; pid: number }) => boolean) {
  const start = Date.now()
  const a = await waitFor(async () => {
    const a = await answer(port).catch(() => null)
    return a && ok(a) ? a : null
  }, 20000, 50, 'the new code to be served')
  return { ...a, ms: Date.now() - start }
}

t.test('editing an imported module restarts the daemon and serves the new code', async (t) => {
  const dir = makeApp(t)
  const s = await startExpress(t, [join(dir, 'app.wsgi'), '--reload-on-changes', '--python-path', dir])
  const first = await answer(s.port)
  t.same([first.helper, first.lazy], ['helper-one', 'lazy-one'])
  t.match(s.stdout(), 'Reload On Changes  : yes')
  await waitFor(() => /WSGI04001: mod_wsgi monitor \(pid=\d+\): Starting change monitor/.test(s.errorLog()), 10000, 50, 'the monitor')

  // Files that are not modules change all the time (databases, uploads): they do not restart anything.
  writeFileSync(join(dir, 'notes.txt'), 'not code\n')
  writeFileSync(join(dir, 'db.sqlite3-journal'), 'x')
  await sleep(1500)
  t.equal((await answer(s.port)).pid, first.pid, 'other files in the same directory are ignored')

  // A module imported with the script. (The daemon has been up for more than 2 s: no restart back-off.)
  writeFileSync(join(dir, 'helper.py'), "TEXT = 'helper-two'\n")
  const second = await until(s.port, (a) => a.helper === 'helper-two')
  t.not(second.pid, first.pid, 'a new daemon process')
  t.ok(second.ms < 8000, `served the new code ${second.ms} ms after the change`)
  t.comment(`reload after editing an imported module: ${second.ms} ms`)
  t.match(s.errorLog(), new RegExp(`WSGI04002: mod_wsgi monitor \\(pid=${first.pid}\\): Change detected to '${join(dir, 'helper.py')}'`))

  // A module first imported by a request of the new process.
  await sleep(2500)
  writeFileSync(join(dir, 'lazy.py'), "TEXT = 'lazy-two'\n")
  const third = await until(s.port, (a) => a.lazy === 'lazy-two')
  t.not(third.pid, second.pid)
  t.comment(`reload after editing a module imported by a request: ${third.ms} ms`)

  // The WSGI script itself.
  await sleep(2500)
  writeFileSync(join(dir, 'app.wsgi'), "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'script-two 0 0']\n")
  const fourth = await until(s.port, (a) => a.helper === 'script-two')
  t.comment(`reload after editing the WSGI script: ${fourth.ms} ms`)
})

t.test('without --reload-on-changes an edited module is not reloaded', async (t) => {
  const dir = makeApp(t)
  const s = await startExpress(t, [join(dir, 'app.wsgi'), '--python-path', dir])
  const first = await answer(s.port)
  writeFileSync(join(dir, 'helper.py'), "TEXT = 'helper-two'\n")
  await sleep(2000)
  const later = await answer(s.port)
  t.same([later.helper, later.pid], ['helper-one', first.pid])
  t.notMatch(s.errorLog(), /WSGI04001/)
})

t.test('the monitor: what it watches, what it ignores, and that it does not poll', async (t) => {
  const work = tempDir(t, 'mod_wsgi-monitor-')
  const r = spawnSync(PYTHON, [join(__dirname, 'reloader_check.py'), join(ROOT, 'python'), work], { encoding: 'utf8', timeout: 40000 })
  t.equal(r.status, 0, r.stderr)
  const found = JSON.parse(r.stdout)
  t.ok(found.watched_count > 20, 'every imported module with a file')
  t.ok(found.watches_stdlib, 'the standard library too, as mod_wsgi does')
  t.ok(found.unrelated_ignored, 'writes to other files of a watched directory are ignored')
  t.equal(found.idle_stat_calls, 0, 'no file is looked at while nothing changes')
  t.ok(found.idle_cpu_seconds < 0.05, `idle CPU over 2.5 s: ${found.idle_cpu_seconds} s`)
  for (const k of ['inplace', 'rename', 'delete', 'tracked', 'polled']) {
    t.ok(found[k].changed, `${k}: the changed file is reported`)
    t.ok(found[k].seconds < 2, `${k}: within ${found[k].seconds} s`)
  }
  t.ok(found.late_watched, 'a module imported after the start is watched')
  t.match(r.stderr, /WSGI04004: .*inotify is not available/, 'the fallback says so')
})
