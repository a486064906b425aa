// apache-conf/kubernetes and apache-conf/compose: the files parse (Debian's python3-yaml, a real YAML
// parser) and say what the README promises: probes on the health endpoint, a preStop drain, a grace
// period above what a stop of the image can take, several replicas behind HAProxy whose configuration
// HAProxy accepts.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { PYTHON, ROOT } from '../helpers/apache'
import { HAPROXY, haproxyAvailable } from '../helpers/haproxy'

const KUBE = join(ROOT, 'apache-conf', 'kubernetes', 'mod_wsgi.yaml')
const COMPOSE = join(ROOT, 'apache-conf', 'compose', 'compose.yaml')
const COMPOSE_HAPROXY = join(ROOT, 'apache-conf', 'compose', 'haproxy.cfg')
const INSTALL = join(ROOT, 'apache-conf', 'docker', 'install-mod_wsgi.sh')
const HEALTH = '/wsgi-health'

const hasYaml = spawnSync(PYTHON, ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any

/** Every document of a YAML file, through yaml.safe_load_all; throws with the parser's message. */
function loadYaml(file: string): Doc[] {
  const r = spawnSync(PYTHON, ['-c', 'import json, sys, yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${file} does not parse: ${r.stderr}`)
  return JSON.parse(r.stdout) as Doc[]
}

/** graceful-timeout and shutdown-timeout of the image's WSGIDaemonProcess line (mod_wsgi's defaults 0 and 5). */
function imageTimeouts(): { graceful: number; shutdown: number } {
  const line = /^WSGIDaemonProcess .*$/m.exec(readFileSync(INSTALL, 'utf8'))?.[0] ?? ''
  const opt = (name: string, dflt: number) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? dflt)
  return { graceful: opt('graceful-timeout', 0), shutdown: opt('shutdown-timeout', 5) }
}

t.test('the YAML parser refuses a broken file (the check can fail)', { skip: hasYaml ? false : 'python3-yaml is not installed (scripts/setup.sh)' }, async (t) => {
  const r = spawnSync(PYTHON, ['-c', 'import sys, yaml\nlist(yaml.safe_load_all(sys.stdin))'], { input: 'a: [1, 2\nb: c\n', encoding: 'utf8' })
  t.not(r.status, 0)
})

t.test('Kubernetes: a Deployment and its Service, probes on the health endpoint, a drain, room to stop', { skip: hasYaml ? false : 'python3-yaml is not installed (scripts/setup.sh)' }, async (t) => {
  const docs = loadYaml(KUBE)
  const dep = docs.find((d) => d?.kind === 'Deployment')
  const svc = docs.find((d) => d?.kind === 'Service')
  t.ok(dep && svc, 'a Deployment and a Service')
  t.equal(dep.apiVersion, 'apps/v1')
  t.ok(dep.spec.replicas >= 2, 'several replicas')
  t.same(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels, "the Deployment selects its pods' labels")
  t.same(svc.spec.selector, dep.spec.template.metadata.labels, 'the Service selects the same pods')
  t.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rolling update never goes below the replicas asked for')

  const c = dep.spec.template.spec.containers[0]
  const port = c.ports.find((p: Doc) => p.containerPort === 80)
  t.ok(port, 'the image listens on 80')
  t.equal(svc.spec.ports[0].targetPort, port.name, 'the Service targets that port')
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    t.equal(c[probe]?.httpGet?.path, HEALTH, `${probe} asks ${HEALTH}`)
    t.equal(c[probe]?.httpGet?.port, port.name, `${probe} on the http port`)
  }
  const ready = c.readinessProbe.periodSeconds * c.readinessProbe.failureThreshold
  const live = c.livenessProbe.periodSeconds * c.livenessProbe.failureThreshold
  t.ok(live > ready, `liveness gives up later (${live} s) than readiness (${ready} s)`)

  const preStop = c.lifecycle?.preStop?.exec?.command as string[] | undefined
  t.match(preStop?.join(' ') ?? '', /sleep \d+$/, 'a preStop drain')
  const drain = Number(preStop?.at(-1) ?? 0)
  const { graceful, shutdown } = imageTimeouts()
  t.ok(graceful > 0, `the image's WSGIDaemonProcess sets graceful-timeout (${graceful})`)
  const grace = dep.spec.template.spec.terminationGracePeriodSeconds
  t.ok(grace > drain + graceful + shutdown, `terminationGracePeriodSeconds (${grace}) above preStop ${drain} + graceful-timeout ${graceful} + shutdown-timeout ${shutdown}`)
})

t.test('Compose: several replicas of the image behind HAProxy, which checks the health endpoint', { skip: hasYaml ? false : 'python3-yaml is not installed (scripts/setup.sh)' }, async (t) => {
  const [compose] = loadYaml(COMPOSE)
  const app = compose.services.app
  const lb = compose.services.lb
  t.equal(app.build.dockerfile, 'apache-conf/docker/Dockerfile', 'the app is the image of apache-conf/docker')
  t.ok(existsSync(join(ROOT, 'apache-conf', 'compose', app.build.context, app.build.dockerfile)), 'build context and Dockerfile exist')
  t.ok(app.deploy.replicas >= 2, 'several replicas')
  const { graceful, shutdown } = imageTimeouts()
  t.ok(Number(/^(\d+)s$/.exec(app.stop_grace_period)?.[1]) > graceful + shutdown, `stop_grace_period (${app.stop_grace_period}) above graceful- and shutdown-timeout`)
  t.match(lb.image, /^haproxy:/, 'HAProxy balances')
  t.ok(lb.volumes.some((v: string) => v.startsWith('./haproxy.cfg:')), 'with haproxy.cfg beside compose.yaml')

  const cfg = readFileSync(COMPOSE_HAPROXY, 'utf8')
  t.match(cfg, new RegExp(`http-check send meth GET uri ${HEALTH} `), 'HAProxy checks the health endpoint')
  t.match(cfg, /server-template app \d+ app:80/, 'every replica of the app service')
  if (haproxyAvailable()) {
    const r = spawnSync(HAPROXY, ['-c', '-f', COMPOSE_HAPROXY], { encoding: 'utf8' })
    t.equal(r.status, 0, `haproxy -c accepts it: ${r.stdout}${r.stderr}`)
  }
})
