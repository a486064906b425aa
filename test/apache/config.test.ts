// Configuration of mod_wsgi.so: `apache2 -t` accepts a complete mod_wsgi 4.1.0 configuration and
// rejects bad ones with a message naming the directive and the option; a valid configuration starts
// daemon processes as children of the Apache parent, with a private socket, all gone after stop.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Apache, APACHE_BIN, childPids, debianModule, cmdline, fixture, FIXTURES, freePort, makeTempDir, startApache, waitFor } from '../helpers/apache'
import { alive } from '../helpers/daemons'

const WWW_DATA_UID = 33

function configTest(config: string): { status: number; output: string } {
  const a = new Apache({ config })
  try {
    return a.configTest()
  } finally {
    void a.cleanup()
  }
}

/** Waits until fn returns a value (not null/undefined) and returns it. */
async function until<T>(fn: () => T | null | undefined, what: string, ms = 10000): Promise<T> {
  return (await waitFor(fn, ms, 50, what)) as T
}

function sockets(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.sock'))
}

t.test('apache2 -t accepts a complete mod_wsgi 4.1.0 configuration', async (t) => {
  const app = fixture('hello-world')
  const r = configTest(`
WSGIPythonHome /usr
WSGIPythonPath /tmp:/var/tmp
WSGIPythonEggs /tmp/eggs
WSGIPythonHashSeed 12345
WSGIPythonOptimize 1
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonWarnings error::UserWarning
WSGIDontWriteBytecode On
WSGILazyInitialization On
WSGIVerboseDebugging Off
WSGIRestrictEmbedded Off
WSGIRestrictStdin On
WSGIRestrictStdout Off
WSGIRestrictSignal On
WSGIAcceptMutex default
WSGIDaemonProcess full processes=2 threads=3 user=www-data group=www-data \\
    supplementary-groups=www-data,#33 umask=0022 home=/tmp display-name=%{GROUP} \\
    lang=en_US.UTF-8 locale=en_US.UTF-8 cpu-priority=-5 python-path=/tmp:/var/tmp \\
    python-home=/usr python-eggs=/tmp/eggs stack-size=524288 maximum-requests=1000 \\
    shutdown-timeout=5 deadlock-timeout=300 inactivity-timeout=60 request-timeout=30 \\
    graceful-timeout=10 cpu-time-limit=100 memory-limit=1000000000 \\
    virtual-memory-limit=2000000000 listen-backlog=50 send-buffer-size=65536 \\
    receive-buffer-size=65536 connect-timeout=10 socket-timeout=20 queue-timeout=15 \\
    header-buffer-size=65536 newrelic-config-file=/nonexistent newrelic-environment=x
WSGIDaemonProcess "quoted name" user=#33 group=#33 display-name="(custom %{GROUP} title)"
WSGIImportScript ${app} process-group=full application-group=%{GLOBAL}
WSGIScriptAlias /full ${app} process-group=full application-group=%{GLOBAL} callable-object=application pass-authorization=On
WSGIScriptAliasMatch ^/match/([^/]+) ${FIXTURES}/$1/app.wsgi process-group=%{GLOBAL}
WSGIHandlerScript wsgi-handler ${app} process-group=full application-group=handlers pass-authorization=Off
WSGIProcessGroup full
WSGIApplicationGroup %{RESOURCE}
WSGICallableObject application
WSGIPassAuthorization On
WSGIScriptReloading Off
WSGIErrorOverride On
WSGIChunkedRequest On
WSGIEnableSendfile On
<Directory ${FIXTURES}>
  WSGIProcessGroup %{ENV:WSGI_GROUP}
  WSGIApplicationGroup %{SERVER}
  WSGIRestrictProcess full "quoted name" %{GLOBAL}
  Require all granted
</Directory>
<Location /handled>
  SetHandler wsgi-handler
  WSGIProcessGroup "quoted name"
</Location>
<VirtualHost *:80>
  ServerName vhost.example
  WSGIDaemonProcess vhost-only threads=1
  WSGIScriptAlias /v ${app} process-group=vhost-only
  WSGIProcessGroup full
</VirtualHost>
`)
  t.equal(r.status, 0, r.output)
  t.match(r.output, /Syntax OK/)
})

// Each bad configuration, and what the error must say (directive, option, what is allowed).
const invalid: Array<[string, string, RegExp]> = [
  ['unknown WSGIDaemonProcess option', 'WSGIDaemonProcess g bogus-option=1', /WSGIDaemonProcess 'g': unknown option 'bogus-option'/],
  ['option without a value', 'WSGIDaemonProcess g threads', /WSGIDaemonProcess: 'threads' is not an option of the form name=value/],
  ['threads not a number', 'WSGIDaemonProcess g threads=abc', /WSGIDaemonProcess 'g': option 'threads' must be an integer from 1 to 10000, not 'abc'/],
  ['threads with trailing junk', 'WSGIDaemonProcess g threads=10x', /option 'threads' must be an integer .*not '10x'/],
  ['processes below 1', 'WSGIDaemonProcess g processes=0', /option 'processes' must be an integer from 1 to 10000, not '0'/],
  ['negative maximum-requests', 'WSGIDaemonProcess g maximum-requests=-1', /option 'maximum-requests' must be an integer from 0 .*not '-1'/],
  ['overflowing timeout', 'WSGIDaemonProcess g socket-timeout=99999999999999999999', /option 'socket-timeout' must be an integer/],
  ['cpu-priority out of range', 'WSGIDaemonProcess g cpu-priority=42', /option 'cpu-priority' must be an integer from -20 to 20, not '42'/],
  ['umask not octal', 'WSGIDaemonProcess g umask=089', /option 'umask' must be an octal number from 0 to 0777, not '089'/],
  ['memory-limit not a number', 'WSGIDaemonProcess g memory-limit=lots', /option 'memory-limit' must be a size in bytes/],
  ['send-buffer-size too small', 'WSGIDaemonProcess g send-buffer-size=100', /option 'send-buffer-size' must be 0 \(the default\) or a size in bytes >= 512, not '100'/],
  ['header-buffer-size below 8192', 'WSGIDaemonProcess g header-buffer-size=4096', /option 'header-buffer-size' must be 0 \(the default\) or a size in bytes >= 8192, not '4096'/],
  ['relative home', 'WSGIDaemonProcess g home=relative/dir', /option 'home' must be an absolute directory path, not 'relative\/dir'/],
  ['unknown user', 'WSGIDaemonProcess g user=no-such-user-mod-wsgi', /WSGIDaemonProcess 'g': option 'user': unknown user 'no-such-user-mod-wsgi'/],
  ['unknown uid', 'WSGIDaemonProcess g user=#987654', /option 'user': no user has uid 987654/],
  ['user root', 'WSGIDaemonProcess g user=root', /WSGIDaemonProcess 'g': option 'user': daemon processes may not run as root \(uid 0\)/],
  ['user #0', 'WSGIDaemonProcess g user=#0', /option 'user': daemon processes may not run as root \(uid 0\), '#0' given/],
  ['unknown group', 'WSGIDaemonProcess g group=no-such-group-mod-wsgi', /option 'group': unknown group 'no-such-group-mod-wsgi'/],
  ['unknown supplementary group', 'WSGIDaemonProcess g supplementary-groups=www-data,nogroup-mod-wsgi', /option 'supplementary-groups': unknown group 'nogroup-mod-wsgi'/],
  ['duplicate group name', 'WSGIDaemonProcess g\nWSGIDaemonProcess g threads=2', /WSGIDaemonProcess: process group name 'g' duplicates the one defined at .*httpd\.conf:\d+/],
  [
    'a global group and a virtual host group of the same name',
    'WSGIDaemonProcess g\n<VirtualHost *:80>\nServerName x\nWSGIDaemonProcess g\n</VirtualHost>',
    /process group name 'g' duplicates the one defined at/,
  ],
  ['WSGIProcessGroup naming no group', 'WSGIProcessGroup nowhere', /Syntax error on line \d+ of .*httpd\.conf: WSGIProcessGroup names the process group 'nowhere', but no WSGIDaemonProcess defines it/],
  [
    'WSGIProcessGroup in a directory naming no group',
    '<Directory /tmp>\nWSGIProcessGroup nowhere\n</Directory>',
    /WSGIProcessGroup names the process group 'nowhere', but no WSGIDaemonProcess defines it/,
  ],
  ['process-group= naming no group', `WSGIScriptAlias /x ${fixture('hello-world')} process-group=nowhere`, /WSGIScriptAlias names the process group 'nowhere', but no WSGIDaemonProcess defines it/],
  [
    'a group of another virtual host',
    '<VirtualHost *:80>\nServerName one\nWSGIDaemonProcess mine\n</VirtualHost>\n<VirtualHost *:80>\nServerName two\nWSGIProcessGroup mine\n</VirtualHost>',
    /WSGIProcessGroup names the process group 'mine', which is defined in another virtual host/,
  ],
  ['WSGIImportScript naming no group', 'WSGIImportScript /tmp/x.py process-group=nowhere application-group=%{GLOBAL}', /WSGIImportScript names the process group 'nowhere'/],
  ['WSGIImportScript without application-group', 'WSGIDaemonProcess g\nWSGIImportScript /tmp/x.py process-group=g', /WSGIImportScript: options 'process-group' and 'application-group' are both required/],
  ['WSGIPythonHashSeed not a number', 'WSGIPythonHashSeed lots', /WSGIPythonHashSeed must be "random" or an integer from 0 to 4294967295, not 'lots'/],
  ['WSGIPythonHashSeed too large', 'WSGIPythonHashSeed 4294967296', /WSGIPythonHashSeed must be "random" or an integer from 0 to 4294967295, not '4294967296'/],
  ['WSGIPythonOptimize out of range', 'WSGIPythonOptimize 3', /WSGIPythonOptimize must be 0, 1 or 2, not '3'/],
  ['global-only WSGIPythonHome in a virtual host', '<VirtualHost *:80>\nWSGIPythonHome /usr\n</VirtualHost>', /WSGIPythonHome cannot occur within <VirtualHost> section/],
  ['global-only WSGISocketPrefix in a virtual host', '<VirtualHost *:80>\nWSGISocketPrefix /tmp/w\n</VirtualHost>', /WSGISocketPrefix cannot occur within <VirtualHost> section/],
  ['global-only WSGIRestrictEmbedded in a virtual host', '<VirtualHost *:80>\nWSGIRestrictEmbedded On\n</VirtualHost>', /WSGIRestrictEmbedded cannot occur within <VirtualHost> section/],
  ['On/Off flag with another value', 'WSGIRestrictSignal maybe', /WSGIRestrictSignal must be On or Off, not 'maybe'/],
  ['per-directory flag with another value', '<Directory /tmp>\nWSGIChunkedRequest yes\n</Directory>', /WSGIChunkedRequest must be On or Off, not 'yes'/],
  ['unknown WSGIScriptAlias option', `WSGIScriptAlias /x ${fixture('hello-world')} bogus=1`, /WSGIScriptAlias: unknown option 'bogus' \(allowed: process-group, application-group, callable-object, pass-authorization, application-type\)/],
  ['bad pass-authorization', `WSGIScriptAlias /x ${fixture('hello-world')} pass-authorization=maybe`, /WSGIScriptAlias: option 'pass-authorization' must be On or Off, not 'maybe'/],
  ['WSGIScriptAlias with one argument', 'WSGIScriptAlias /x', /WSGIScriptAlias requires a URL path and a script file or directory/],
  ['bad WSGIScriptAliasMatch expression', `WSGIScriptAliasMatch ^/(x ${fixture('hello-world')}`, /WSGIScriptAliasMatch: regular expression '\^\/\(x' could not be compiled/],
  ['unknown WSGIHandlerScript option', `WSGIHandlerScript h ${fixture('hello-world')} bogus=1`, /WSGIHandlerScript: unknown option 'bogus'/],
]

t.test('apache2 -t rejects invalid configurations, naming directive and option', async (t) => {
  for (const [name, config, message] of invalid) {
    const r = configTest(config)
    t.not(r.status, 0, `${name}: fails`)
    t.match(r.output, message, `${name}: says why`)
  }
})

t.test('a valid configuration starts daemons as children of the Apache parent, stop removes them', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess alpha processes=2 threads=2
WSGIDaemonProcess beta threads=1
WSGIScriptAlias /alpha ${fixture('hello-world')} process-group=alpha
WSGIScriptAlias /beta ${fixture('hello-world')}
<Location /beta>
  WSGIProcessGroup beta
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const parent = apache.pid
  const daemons = await until(() => (apache.daemonPids().length === 3 ? apache.daemonPids() : null), 'three daemons')
  // argv[0] is (wsgi:NAME) from the start; the daemon may then set a display-name of the same text.
  const names = daemons.map((p) => cmdline(p).split(' ')[0]).sort()
  t.same(names, ['(wsgi:alpha)', '(wsgi:alpha)', '(wsgi:beta)'], 'argv[0] names the process group')
  t.notOk(names.includes('(wsgi:)'), 'no default group: every alias has a process group')

  const files = sockets(apache.socketDir)
  t.equal(files.length, 2, 'one socket per process group')
  for (const f of files) {
    const st = statSync(join(apache.socketDir, f))
    t.ok(st.isSocket(), `${f} is a socket`)
    t.equal(st.uid, WWW_DATA_UID, `${f} belongs to Apache's User (www-data)`)
    t.equal(st.mode & 0o777, 0o600, `${f} has mode 0600`)
    t.match(f, new RegExp(`^wsgi\\.${parent}\\.`), `${f} carries the parent pid`)
  }

  const a = await apache.request('/alpha')
  t.equal(a.status, 200)
  t.equal(a.text, 'Hello World!')
  const b = await apache.request('/beta')
  t.equal(b.status, 200, 'a group chosen by WSGIProcessGroup in a <Location>')

  await apache.stop()
  t.notOk(alive(parent), 'the Apache parent is gone')
  t.same(daemons.filter(alive), [], 'no daemon process remains')
  t.same(sockets(apache.socketDir), [], 'no socket file remains')
})

t.test('the default process group runs only when a request can use it', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIScriptAlias / ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const daemons = await until(() => (apache.daemonPids().length === 1 ? apache.daemonPids() : null), 'a daemon')
  t.match(cmdline(daemons[0]), /^\(wsgi:\)/, 'the default group, named ""')
  const r = await apache.request('/anything')
  t.equal(r.status, 200)
  t.equal(r.text, 'Hello World!')
})

t.test('WSGISocketPrefix in a directory Apache children cannot search stops the start', async (t) => {
  const apache = new Apache({
    config: `
WSGISocketPrefix /root/mod-wsgi-private/wsgi
WSGIDaemonProcess g
WSGIScriptAlias /g ${fixture('hello-world')} process-group=g
`,
  })
  t.teardown(() => apache.cleanup())
  apache.port = await freePort()
  apache.writeConfig()
  // In the foreground, so that the failing start shows in the exit status (no detach).
  const r = spawnSync(APACHE_BIN, ['-d', apache.dir, '-f', apache.conf, '-DFOREGROUND'], { encoding: 'latin1', timeout: 15000 })
  t.not(r.status, 0, 'Apache does not start')
  t.match(
    apache.log(),
    /WSGI01111: WSGISocketPrefix \/root\/mod-wsgi-private\/wsgi: the directory '\/root\/mod-wsgi-private\/' does not exist or cannot be searched by user 'www-data'/,
  )
  t.same(sockets(apache.socketDir), [], 'no socket was created')
  t.same(childPids(r.pid ?? 0), [], 'no daemon was left behind')
})

/** Debian's libapache2-mod-python (scripts/setup.sh unpacks it under build/debian, or it is installed);
 *  else a stand-in built with apxs. */
function modPython(t: { teardown: (fn: () => unknown) => void; equal: (a: unknown, b: unknown, m: string) => unknown }): string {
  const real = debianModule('mod_python.so')
  if (real) return real
  // A stand-in module whose name is mod_python.c, like the real one.
  const dir = makeTempDir('mod_wsgi-mod-python-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(
    join(dir, 'mod_python.c'),
    '#include "httpd.h"\n#include "http_config.h"\n' +
      'module AP_MODULE_DECLARE_DATA python_module = { STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, NULL };\n',
  )
  const built = spawnSync('apxs', ['-c', 'mod_python.c'], { cwd: dir, encoding: 'latin1' })
  t.equal(built.status, 0, `apxs builds the stand-in: ${built.stderr}`)
  return join(dir, '.libs', 'mod_python.so')
}

t.test('Apache refuses to start when mod_python is loaded too (4.1.0, Features Removed 1)', async (t) => {
  const apache = new Apache({
    preamble: `LoadModule python_module ${modPython(t)}`,
    config: `WSGIScriptAlias /x ${fixture('hello-world')}`,
  })
  t.teardown(() => apache.cleanup())
  await t.rejects(apache.start(), /apache2 failed to start/)
  t.match(apache.log(), /\[wsgi:crit\].*WSGI01010: mod_wsgi 4\.1\.0 cannot be used together with mod_python/)
})
