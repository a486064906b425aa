// Django's runmodwsgi end to end, as a user does it: a virtualenv over Debian's Python with the mod_wsgi
// package installed by python/install.py, `django-admin startproject`, 'mod_wsgi.server' in
// INSTALLED_APPS, collectstatic, `manage.py runmodwsgi --port N --reload-on-changes`: the admin login page
// and its CSS load, and an edited view shows its new text.
import { spawnSync } from 'node:child_process'
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { PYTHON, request, ROOT, sleep, waitFor } from '../helpers/apache'
import { startExpress, tempDir } from './express-helpers'

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60000 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`)
  return r.stdout
}

t.test('manage.py runmodwsgi serves a new Django project, its static files, and reloads an edited view', async (t) => {
  const dir = tempDir(t, 'mod_wsgi-django-')
  const venv = join(dir, 'venv')
  run(PYTHON, ['-m', 'venv', '--system-site-packages', '--without-pip', venv], dir)
  const python = join(venv, 'bin', 'python')
  // The one command the README gives for making the package importable.
  t.match(run(python, [join(ROOT, 'python', 'install.py')], dir), /mod_wsgi package: .*site-packages\/mod_wsgi\.pth/)

  run(python, ['-m', 'django', 'startproject', 'mysite'], dir)
  const project = join(dir, 'mysite')
  appendFileSync(join(project, 'mysite', 'settings.py'), "\nINSTALLED_APPS += ['mod_wsgi.server']\nSTATIC_ROOT = BASE_DIR / 'static'\n")
  writeFileSync(join(project, 'mysite', 'views.py'), "from django.http import HttpResponse\n\n\ndef hello(request):\n    return HttpResponse('first version')\n")
  const urls = join(project, 'mysite', 'urls.py')
  writeFileSync(
    urls,
    readFileSync(urls, 'utf8')
      .replace('from django.urls import path', 'from django.urls import path\n\nfrom . import views')
      .replace("path('admin/', admin.site.urls),", "path('admin/', admin.site.urls),\n    path('hello/', views.hello),"),
  )
  t.match(run(python, ['manage.py', 'collectstatic', '--noinput'], project), /static files copied/)
  t.match(run(python, ['manage.py', 'help'], project), /\[server\]\s+runmodwsgi/, 'runmodwsgi is a command of the project')
  const help = run(python, ['manage.py', 'runmodwsgi', '--help'], project)
  t.match(help, /--reload-on-changes/, 'runmodwsgi --help lists the options of start-server')
  t.match(help, /WSGI_APPLICATION, BASE_DIR, STATIC_URL/)

  const s = await startExpress(t, ['--reload-on-changes'], { command: [python, 'manage.py', 'runmodwsgi'], cwd: project, readyPath: '/hello/' })
  const login = await request(s.port, '/admin/login/')
  t.equal(login.status, 200, 'the admin login page')
  t.match(login.text, /<title>Log in \| Django site admin<\/title>/)
  const css = login.text.match(/href="(\/static\/admin\/css\/base\.css)"/)?.[1]
  t.ok(css, 'it links its stylesheet under STATIC_URL')
  const sheet = await request(s.port, css as string)
  t.equal(sheet.status, 200, 'the stylesheet loads')
  t.match(sheet.headers['content-type'], /text\/css/)
  t.equal(sheet.text, readFileSync(join(project, 'static', 'admin', 'css', 'base.css'), 'latin1'), 'from STATIC_ROOT')
  t.notMatch(sheet.headers.server ?? '', /WSGIServer/, 'served by Apache')

  const conf = readFileSync(join(s.root, 'httpd.conf'), 'utf8')
  t.match(conf, `home='${project}'`, 'the working directory is BASE_DIR')
  t.match(conf, `python-home='${venv}'`, "the daemons use the virtualenv's Python")
  t.match(conf, `Alias '/static' '${join(project, 'static')}'`)

  t.equal((await request(s.port, '/hello/')).text, 'first version')
  // 'mod_wsgi.server' is imported by Django inside the daemon too: the package is there.
  t.notMatch(s.errorLog(), /No module named 'mod_wsgi\.server'/)

  await sleep(2500) // past the daemon's first seconds, where a restart is delayed
  const edited = Date.now()
  writeFileSync(join(project, 'mysite', 'views.py'), "from django.http import HttpResponse\n\n\ndef hello(request):\n    return HttpResponse('second version')\n")
  await waitFor(async () => (await request(s.port, '/hello/').catch(() => null))?.text === 'second version', 20000, 50, 'the edited view')
  t.comment(`the edited view was served ${Date.now() - edited} ms after the change`)
  t.pass('the edited view shows its new text')
})
