// Issue 3, item 7: application groups through a real Apache. %{GLOBAL} is the main interpreter, any other
// name a sub-interpreter; %{SERVER}, %{RESOURCE} (the default) and %{ENV:var} resolve as in mod_wsgi;
// codecs work in sub-interpreters (release notes 4.1.0, Bugs Fixed 2); and each application group has its
// own worker threads, so a C callback entering Python through PyGILState_Ensure lands in the interpreter
// of the request that made it.
import t from 'tap'
import { fixture, FIXTURES, startApache } from '../helpers/apache'

const APP = fixture('interp-callback')

interface Info {
  application_group: string
  environ_group: string
  interpreter: number
  callback_interpreters: number[]
  sorted: number[]
  hits: number
  modules_id: number
  idna: string
  utf16: string
  cp1252: string
}

t.test('application groups', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess groups processes=1 threads=4
WSGIProcessGroup groups
WSGIScriptAlias /global ${APP} application-group=%{GLOBAL}
WSGIScriptAlias /named-one ${APP} application-group=named-one
WSGIScriptAlias /named-two ${APP} application-group=named-two
WSGIScriptAlias /Resource ${APP}
WSGIScriptAlias /server ${APP}
WSGIScriptAlias /env ${APP}
<Location /server>
  WSGIApplicationGroup %{SERVER}
</Location>
<Location /env>
  SetEnv MY_APP_GROUP group-from-env
  WSGIApplicationGroup %{ENV:MY_APP_GROUP}
</Location>
<VirtualHost 127.0.0.1:{{PORT}}>
  ServerName 127.0.0.1
</VirtualHost>
<VirtualHost 127.0.0.1:{{PORT}}>
  ServerName vhost.example
</VirtualHost>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const info = async (path: string, host?: string): Promise<Info> => {
    const r = await apache.request(path, host ? { headers: { host } } : {})
    t.equal(r.status, 200, `${path}${host ? ` (${host})` : ''}`)
    return JSON.parse(r.text) as Info
  }
  const hostPort = `127.0.0.1:${apache.port}`

  await t.test('%{GLOBAL} is the main interpreter, other names are sub-interpreters', async (t) => {
    const g = await info('/global')
    t.equal(g.application_group, '')
    t.equal(g.environ_group, '')
    t.equal(g.interpreter, 0, 'the main interpreter')
    const one = await info('/named-one')
    const two = await info('/named-two')
    t.equal(one.application_group, 'named-one')
    t.equal(two.application_group, 'named-two')
    t.not(one.interpreter, 0, 'a sub-interpreter')
    t.not(two.interpreter, 0)
    t.not(one.interpreter, two.interpreter, 'one per name')
    t.not(one.modules_id, two.modules_id, 'with its own sys.modules')
    const again = await info('/named-one')
    t.equal(again.interpreter, one.interpreter, 'the same name, the same interpreter')
    t.equal(again.hits, one.hits + 1, 'and the same module state')
  })

  await t.test('%{RESOURCE} (the default), %{SERVER}, %{ENV:var}', async (t) => {
    t.equal((await info('/Resource/x')).application_group, `${hostPort}|/resource`, '%{RESOURCE}: host:port|script name, lower-cased')
    t.equal((await info('/server')).application_group, hostPort, '%{SERVER}: host:port')
    t.equal((await info('/env')).application_group, 'group-from-env', '%{ENV:var}: the variable set by SetEnv')
    t.equal((await info('/server', `vhost.example:${apache.port}`)).application_group, `vhost.example:${apache.port}`,
      "%{SERVER} in a virtual host: that host's ServerName")
    t.equal((await info('/Resource', `vhost.example:${apache.port}`)).application_group, `vhost.example:${apache.port}|/resource`)
  })

  await t.test('codecs work in every interpreter', async (t) => {
    for (const path of ['/global', '/named-one', '/named-two', '/server', '/env']) {
      const i = await info(path)
      t.equal(i.idna, 'xn--bcher-kva.example', `${path}: idna`)
      t.equal(i.utf16, 'fffe7800', `${path}: utf-16`)
      t.equal(i.cp1252, '80', `${path}: cp1252`)
    }
  })

  await t.test('a C callback (PyGILState_Ensure) lands in the interpreter of its request', async (t) => {
    const paths = ['/global', '/named-one', '/named-two', '/server', '/env', '/Resource']
    // Concurrent and interleaved: every group's threads are busy at once, several times over.
    const results = await Promise.all(Array.from({ length: 36 }, (_, i) => info(paths[i % paths.length])))
    for (const r of results) {
      t.same(r.callback_interpreters, [r.interpreter], `group '${r.application_group}': callbacks ran in interpreter ${r.interpreter}`)
      t.same(r.sorted, [1, 2, 3, 4, 5, 6])
    }
  })
})
