"""Drives python/mod_wsgi/server/reloader.py directly (no Apache) and prints one JSON object of findings
for test/express/reload.test.ts. Usage: python3 reloader_check.py PACKAGE_PARENT WORK_DIR"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
work = sys.argv[2]
sys.path.insert(0, work)

from mod_wsgi.server import reloader  # noqa: E402

results = {}


def write(name, text):
    with open(os.path.join(work, name), 'w') as fp:
        fp.write(text)


def monitor(**kwargs):
    event = threading.Event()
    changed = []

    def restart(path):
        changed.append(path)
        event.set()

    m = reloader.Monitor(restart=restart, **kwargs)
    return m, event, changed


def wait(event, seconds=5.0):
    start = time.monotonic()
    event.wait(seconds)
    return round(time.monotonic() - start, 3)


def fresh_module(name):
    write(name + '.py', 'VALUE = 1\n')
    __import__(name)
    return os.path.join(work, name + '.py')


# 1. An in-place write of a module imported before the monitor started.
path = fresh_module('mod_inplace')
m, event, changed = monitor()
m.start()
results['watched_count'] = len(m.files())
results['watches_stdlib'] = os.path.abspath(json.__file__) in m.files()
write('unrelated.txt', 'not a module\n')
write('data.json', '{}\n')
time.sleep(0.5)
results['unrelated_ignored'] = not event.is_set()
# No file is looked at while nothing happens: count os.stat calls from the monitor thread.
stats = []
real_stat = os.stat


def counting_stat(*args, **kwargs):
    if threading.current_thread() is m._thread:
        stats.append(args[0])
    return real_stat(*args, **kwargs)


os.stat = counting_stat
cpu = time.process_time()
time.sleep(2.5)
results['idle_stat_calls'] = len(stats)
results['idle_cpu_seconds'] = round(time.process_time() - cpu, 4)
os.stat = real_stat
write('mod_inplace.py', 'VALUE = 2\n')
results['inplace'] = {'seconds': wait(event), 'changed': changed[:1] == [path]}

# 2. A module imported after the monitor started, replaced by rename (sed -i, most IDEs).
m, event, changed = monitor()
m.start()
path = fresh_module('mod_late')
time.sleep(1.5)  # the next look at len(sys.modules)
results['late_watched'] = path in m.files()
write('mod_late.tmp', 'VALUE = 3\n')
os.replace(os.path.join(work, 'mod_late.tmp'), path)
results['rename'] = {'seconds': wait(event), 'changed': changed[:1] == [path]}

# 3. A deleted module.
path = fresh_module('mod_deleted')
m, event, changed = monitor()
m.start()
os.remove(path)
results['delete'] = {'seconds': wait(event), 'changed': changed[:1] == [path]}

# 4. A file that is not a module, named with track_changes() (as handler.wsgi does for the script).
m, event, changed = monitor()
config = os.path.join(work, 'settings.ini')
write('settings.ini', '[a]\n')
m.track(config)
m.start()
write('settings.ini', '[b]\n')
results['tracked'] = {'seconds': wait(event), 'changed': changed[:1] == [config]}

# 5. Without inotify: modification times once a second.
path = fresh_module('mod_polled')


class NoInotify(object):
    def __init__(self):
        raise OSError(38, 'Function not implemented')


saved = reloader._Inotify
reloader._Inotify = NoInotify
m, event, changed = monitor(interval=0.2)
m.start()
reloader._Inotify = saved
time.sleep(0.3)
os.utime(path, (time.time() + 5, time.time() + 5))
results['polled'] = {'seconds': wait(event), 'changed': changed[:1] == [path]}

print(json.dumps(results))
