// The identity drop, against a simulated kernel: call order, the checks after the drop, and refusal on
// every failure. (test/daemon/ drops a real process from root to www-data.)
import t from 'tap'
import { dropIdentity, type IdentityOps } from '../../src/daemon/identity'
import { Logger, log } from '../../src/daemon/log'

interface Sim {
  ruid: number
  euid: number
  rgid: number
  egid: number
  groups: number[]
  calls: string[]
  /** Misbehaviours to simulate. */
  faults: Partial<Record<'setgroups' | 'initgroups' | 'setgid' | 'setuid' | 'setuidNoop' | 'regain' | 'groupsIgnored', boolean>>
}

function sim(faults: Sim['faults'] = {}, uid = 0): { s: Sim; ops: IdentityOps } {
  const s: Sim = { ruid: uid, euid: uid, rgid: uid, egid: uid, groups: [uid], calls: [], faults }
  const eperm = () => Object.assign(new Error('EPERM, Operation not permitted'), { code: 'EPERM' })
  const ops: IdentityOps = {
    getuid: () => s.ruid,
    geteuid: () => s.euid,
    getgid: () => s.rgid,
    getegid: () => s.egid,
    getgroups: () => [...s.groups],
    setgroups: (g) => {
      s.calls.push(`setgroups(${g})`)
      if (faults.setgroups || s.euid !== 0) throw eperm()
      if (!faults.groupsIgnored) s.groups = [...g]
    },
    initgroups: (u, g) => {
      s.calls.push(`initgroups(${u},${g})`)
      if (faults.initgroups || s.euid !== 0) throw eperm()
      s.groups = [Number(g), 100, 200]
    },
    setgid: (id) => {
      s.calls.push(`setgid(${id})`)
      if (faults.setgid || s.euid !== 0) throw eperm()
      s.rgid = s.egid = id
    },
    setuid: (id) => {
      s.calls.push(`setuid(${id})`)
      if (id === 0 && faults.regain) {
        s.ruid = s.euid = 0
        return
      }
      if (faults.setuid || s.euid !== 0) throw eperm()
      if (faults.setuidNoop) return
      s.ruid = s.euid = id
    },
  }
  return { s, ops }
}

const target = { group: 'g', user: 'www-data', uid: 33, gid: 33, supplementaryGroups: null as number[] | null }

// Keep the test output clean: the logger writes to fd 2 otherwise.
log.setLevel('emerg')
t.teardown(() => log.setLevel('warn'))
void Logger

t.test('initgroups, setgid, setuid in that order, then checked', async (t) => {
  const { s, ops } = sim()
  t.ok(dropIdentity(target, ops))
  t.same(s.calls, ['initgroups(www-data,33)', 'setgid(33)', 'setuid(33)', 'setuid(0)'])
  t.equal(s.euid, 33)
  t.equal(s.egid, 33)
})

t.test('supplementary-groups replaces the list', async (t) => {
  const { s, ops } = sim()
  t.ok(dropIdentity({ ...target, supplementaryGroups: [4, 24] }, ops))
  t.same(s.calls.slice(0, 3), ['setgroups(4,24)', 'setgid(33)', 'setuid(33)'])
  t.same(s.groups, [4, 24])
})

t.test('uid 0 is refused without trying anything', async (t) => {
  const { s, ops } = sim()
  t.notOk(dropIdentity({ ...target, uid: 0 }, ops))
  t.same(s.calls, [])
})

t.test('every failing step refuses to serve', async (t) => {
  for (const fault of ['setgroups', 'setgid', 'setuid'] as const) {
    const { ops } = sim({ [fault]: true })
    t.notOk(dropIdentity({ ...target, supplementaryGroups: fault === 'setgroups' ? [1] : null }, ops), fault)
  }
  t.notOk(dropIdentity(target, sim({ initgroups: true }).ops), 'initgroups')
  t.notOk(dropIdentity(target, sim({ setuidNoop: true }).ops), 'setuid that silently did nothing')
  t.notOk(dropIdentity(target, sim({ regain: true }).ops), 'root could be regained')
  t.notOk(dropIdentity({ ...target, supplementaryGroups: [4] }, sim({ groupsIgnored: true }).ops), 'groups not applied')
})

t.test('started unprivileged: nothing to drop, runs as it is', async (t) => {
  const same = sim({}, 33)
  t.ok(dropIdentity(target, same.ops))
  t.same(same.s.calls, [])
  const other = sim({}, 1000)
  t.ok(dropIdentity(target, other.ops), 'a different user: warned, not fatal (Apache behaves alike)')
  t.same(other.s.calls, [])
})

t.test("the working directory follows mod_wsgi's rule", async (t) => {
  const { workingDirectory } = await import('../../src/daemon/process-setup')
  t.equal(workingDirectory('/srv/app', 33, 33, '/var/www'), '/srv/app', 'home= wins')
  t.equal(workingDirectory('/srv/app', 34, 33, '/var/backups'), '/srv/app', 'home= wins over user=')
  t.equal(workingDirectory(null, 34, 33, '/var/backups'), '/var/backups', "user= alone: that user's home")
  t.equal(workingDirectory(null, 33, 33, '/var/www'), null, "Apache's own user: keep the inherited directory")
  t.equal(workingDirectory(null, 34, 33, null), undefined, 'another user without a home directory: unknown')
})
