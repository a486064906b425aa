// Issue 3, item 9: the request-level directives through a real Apache — WSGIPassAuthorization,
// WSGIScriptReloading (default On; in a daemon process group a changed script restarts the process, as
// mod_wsgi does, and in the default group the script is reloaded), WSGIErrorOverride, WSGIHandlerScript
// (handle_request, reload_required), WSGIScriptAliasMatch, WSGIRestrictEmbedded.
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, startApache } from '../helpers/apache'

const ENV = fixture('validated-environ')

const script = (version: string) => `import os

def application(environ, start_response):
    body = ('${version} pid=%d' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`

t.test('request directives', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess main threads=4
WSGIDaemonProcess reloader threads=2
WSGIDaemonProcess frozen threads=2
WSGIDaemonProcess handlers threads=2
WSGIProcessGroup main

WSGIScriptAlias /auth-off ${ENV}
WSGIScriptAlias /auth-on ${ENV}
WSGIScriptAlias /auth-option ${ENV} pass-authorization=On
<Location /auth-on>
  WSGIPassAuthorization On
</Location>

WSGIScriptAlias /reload {{DIR}}/scripts/reload.wsgi process-group=reloader
WSGIScriptAlias /reload-default {{DIR}}/scripts/reload.wsgi process-group=%{GLOBAL}
WSGIScriptAlias /frozen {{DIR}}/scripts/reload.wsgi process-group=frozen
<Location /frozen>
  WSGIScriptReloading Off
</Location>

WSGIScriptAlias /status ${fixture('response-basic')}
WSGIScriptAlias /override ${fixture('response-basic')}
<Location /override>
  WSGIErrorOverride On
</Location>
ErrorDocument 404 "the 404 error document"
ErrorDocument 503 "the 503 error document"

WSGIScriptAliasMatch ^/match/([a-z-]+) ${FIXTURES}/$1/app.wsgi

Alias /files {{DIR}}/files
Alias /default-files {{DIR}}/files
<Directory {{DIR}}/files>
  Require all granted
  AddHandler my-handler .txt .reload
  WSGIHandlerScript my-handler ${fixture('handler-script', 'handler.wsgi')} process-group=handlers
</Directory>
# One interpreter for every file: under %{RESOURCE} (the default) each file would have its own.
<Location /default-files>
  WSGIHandlerScript my-handler ${fixture('handler-script', 'handler.wsgi')} process-group=%{GLOBAL} application-group=%{GLOBAL}
</Location>

<Directory {{DIR}}/scripts>
  Require all granted
</Directory>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const scripts = join(apache.dir, 'scripts')
  const files = join(apache.dir, 'files')
  // Made after start (the directories are only referenced per request); readable by www-data.
  mkdirSync(scripts, { mode: 0o755 })
  mkdirSync(files, { mode: 0o755 })
  const reloadScript = join(scripts, 'reload.wsgi')
  writeFileSync(reloadScript, script('version 1'), { mode: 0o644 })
  writeFileSync(join(files, 'a.txt'), 'file a', { mode: 0o644 })
  writeFileSync(join(files, 'b.reload'), 'file b', { mode: 0o644 })

  await t.test('WSGIPassAuthorization', async (t) => {
    const auth = { authorization: 'Basic dXNlcjpwYXNz' }
    const off = JSON.parse((await apache.request('/auth-off', { headers: auth })).text)
    t.notOk('HTTP_AUTHORIZATION' in off, 'Off (the default): hidden')
    const on = JSON.parse((await apache.request('/auth-on', { headers: auth })).text)
    t.equal(on.HTTP_AUTHORIZATION, 'Basic dXNlcjpwYXNz', 'On: passed')
    const option = JSON.parse((await apache.request('/auth-option', { headers: auth })).text)
    t.equal(option.HTTP_AUTHORIZATION, 'Basic dXNlcjpwYXNz', 'pass-authorization=On of WSGIScriptAlias')
  })

  await t.test('WSGIScriptReloading', async (t) => {
    const first = await apache.request('/reload')
    t.match(first.text, /^version 1 pid=\d+$/)
    const pid1 = first.text.split('pid=')[1]
    const dflt1 = await apache.request('/reload-default')
    t.match(dflt1.text, /^version 1 /)
    const dpid = dflt1.text.split('pid=')[1]
    t.match((await apache.request('/frozen')).text, /^version 1 /)

    writeFileSync(reloadScript, script('version 2'))
    const later = new Date(Date.now() + 5000)
    utimesSync(reloadScript, later, later)

    const mark = apache.log().length
    const second = await apache.request('/reload')
    t.equal(second.status, 200, 'the request is answered, not lost')
    t.match(second.text, /^version 2 pid=\d+$/, 'daemon process group: the edited script is used on the next request')
    t.not(second.text.split('pid=')[1], pid1, 'by a new daemon process: mod_wsgi restarts the process in daemon mode')
    t.match(apache.log().slice(mark), /WSGI03015: WSGI script '[^']*reload\.wsgi' has changed: daemon process 'reloader' restarts/)

    const dflt2 = await apache.request('/reload-default')
    t.match(dflt2.text, /^version 2 /, 'default group: the edited script is reloaded')
    t.equal(dflt2.text.split('pid=')[1], dpid, 'in the same process')
    t.match(apache.log().slice(mark), /WSGI03014: Reloading WSGI script '[^']*reload\.wsgi'/)

    t.match((await apache.request('/frozen')).text, /^version 1 /, 'WSGIScriptReloading Off: not reloaded')
    const third = await apache.request('/reload')
    t.equal(third.text, second.text, 'an unchanged script is not reloaded again')
  })

  await t.test('WSGIErrorOverride', async (t) => {
    let r = await apache.request('/status?status=404%20Not%20Found')
    t.equal(r.status, 404)
    t.equal(r.text, 'the body of the response\n', "Off (the default): the application's error page")
    r = await apache.request('/override?status=404%20Not%20Found')
    t.equal(r.status, 404)
    t.equal(r.text, 'the 404 error document', "On: Apache's ErrorDocument")
    r = await apache.request('/override?status=503%20Busy')
    t.equal(r.status, 503)
    t.equal(r.text, 'the 503 error document')
    r = await apache.request('/override?status=201%20Created')
    t.equal(r.text, 'the body of the response\n', 'a success status is left alone')
  })

  await t.test('WSGIScriptAliasMatch', async (t) => {
    const hello = await apache.request('/match/hello-world')
    t.equal(hello.text, 'Hello World!', '$1 names the script')
    const e = JSON.parse((await apache.request('/match/validated-environ/a/b')).text)
    t.equal(e.SCRIPT_NAME, '/match/validated-environ')
    t.equal(e.PATH_INFO, '/a/b')
    t.equal(e.SCRIPT_FILENAME, ENV)
    t.equal((await apache.request('/match/no-such-app')).status, 404)
  })

  await t.test('WSGIHandlerScript: handle_request() serves files of the handler type', async (t) => {
    const a = JSON.parse((await apache.request('/files/a.txt')).text)
    t.equal(a.script_filename, join(files, 'a.txt'), 'SCRIPT_FILENAME is the requested file')
    t.equal(a.handler_script, fixture('handler-script', 'handler.wsgi'))
    t.equal(a.callable_object, 'handle_request')
    t.equal(a.request_handler, 'my-handler')
    t.equal(a.process_group, 'handlers')
    t.equal(a.content, 'file a')
    const again = JSON.parse((await apache.request('/files/a.txt')).text)
    t.equal(again.loaded_at, a.loaded_at, 'reload_required() false: the handler script stays loaded')
    t.equal(again.pid, a.pid)
  })

  await t.test('WSGIHandlerScript: reload_required(resource) true reloads the handler script', async (t) => {
    const mark = apache.log().length
    const b1 = JSON.parse((await apache.request('/files/b.reload')).text)
    t.equal(b1.content, 'file b')
    const b2 = JSON.parse((await apache.request('/files/b.reload')).text)
    t.not(b2.pid, b1.pid, 'in a daemon process group the process restarts, as mod_wsgi does')
    t.match(apache.log().slice(mark), /WSGI03015: WSGI script '[^']*handler\.wsgi' has changed: daemon process 'handlers' restarts/)

    const d1 = JSON.parse((await apache.request('/default-files/b.reload')).text)
    const d2 = JSON.parse((await apache.request('/default-files/b.reload')).text)
    t.equal(d2.process_group, '')
    t.equal(d2.pid, d1.pid, 'in the default group: the same process')
    t.ok(d2.loaded_at > d1.loaded_at, 'the handler script loaded afresh')
    const d3 = JSON.parse((await apache.request('/default-files/a.txt')).text)
    t.equal(d3.loaded_at, d2.loaded_at, 'and kept while reload_required() says no')
  })
})

t.test('WSGIRestrictEmbedded On: a request with no process group gets 500', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIRestrictEmbedded On
WSGIDaemonProcess main threads=2
WSGIScriptAlias /daemon ${fixture('hello-world')} process-group=main
WSGIScriptAlias /embedded ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const r = await apache.request('/embedded')
  t.equal(r.status, 500)
  await apache.waitForLog(/WSGI01237: Embedded mode of mod_wsgi disabled by runtime configuration: [^ ]*hello-world\/app\.wsgi/)
  t.equal(apache.daemonPids().length, 1, 'no default group daemon was started')
  t.equal((await apache.request('/daemon')).text, 'Hello World!', 'a daemon process group serves as usual')
})
