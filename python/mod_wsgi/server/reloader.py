"""Restarts this daemon process when the source file of an imported module changes: what
`mod_wsgi-express start-server --reload-on-changes` (and `manage.py runmodwsgi --reload-on-changes`)
turns on.

Nothing is polled file by file. The directories holding the files of the modules in sys.modules are
watched with Linux inotify, and one background thread sleeps in poll() (the GIL released) until the
kernel reports that a watched file was written, replaced, renamed or deleted. Modules imported later are
picked up when the size of sys.modules changes, which the thread looks at once a second (one len()).

On a change the thread logs which file changed and sends this process SIGINT, as mod_wsgi's own monitor
does: the daemon finishes its requests (shutdown-timeout) and exits, and the Apache parent starts a new
daemon process, which imports the new code.

Where inotify is missing (not Linux), modification times are compared once a second instead.

Log lines (written to the error log through sys.stderr):
  WSGI04001  the monitor started
  WSGI04002  a change was detected: the process restarts
  WSGI04003  a directory could not be watched (for example the inotify watch limit was reached)
  WSGI04004  inotify is unavailable: modification times are checked every second instead
"""

import ctypes
import ctypes.util
import errno
import importlib.util
import os
import select
import signal
import struct
import sys
import threading
import time

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

# A write finished (editors writing in place, cp, touch), a file renamed over it (sed -i, most IDEs),
# moved away or deleted; or the directory itself went away.
DIRECTORY_EVENTS = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
DIRECTORY_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED

EVENT_HEADER = struct.Struct('iIII')  # struct inotify_event: wd, mask, cookie, len; then the name

_lock = threading.Lock()
_monitor = None


def _log(code, message):
    try:
        sys.stderr.write('%s: mod_wsgi monitor (pid=%d): %s\n' % (code, os.getpid(), message))
        sys.stderr.flush()
    except Exception:
        pass


def module_source(module):
    """The file a module was loaded from, as the path to watch (the .py for cached byte code), or None
    for built-in, frozen, namespace and zipped modules."""
    try:
        path = vars(module).get('__file__')  # not getattr: a module __getattr__ could run code
    except TypeError:
        return None
    if not path or not isinstance(path, str):
        return None
    if path.endswith(('.pyc', '.pyo')):
        try:
            path = importlib.util.source_from_cache(path)
        except ValueError:
            path = path[:-1]
    path = os.path.abspath(path)
    return path if os.path.isfile(path) else None


class _Inotify(object):
    """The three libc calls this needs, through ctypes (the standard library has no inotify)."""

    def __init__(self):
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add.restype = ctypes.c_int
        init = libc.inotify_init1
        init.argtypes = [ctypes.c_int]
        init.restype = ctypes.c_int
        self.fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

    def add_watch(self, directory, mask):
        wd = self._add(self.fd, os.fsencode(directory), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return wd

    def read_events(self):
        """Pending events as (wd, mask, name) tuples; [] when there are none."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        events = []
        offset = 0
        while offset + EVENT_HEADER.size <= len(data):
            wd, mask, _cookie, length = EVENT_HEADER.unpack_from(data, offset)
            offset += EVENT_HEADER.size
            name = data[offset:offset + length].rstrip(b'\0')
            offset += length
            events.append((wd, mask, os.fsdecode(name)))
        return events


class Monitor(object):
    """Watches module files and restarts the process on the first change. One per process."""

    def __init__(self, interval=1.0, settle=0.1, restart=None):
        self.interval = interval
        self.settle = settle
        self._restart = restart or self._signal_restart
        self._lock = threading.Lock()
        self._seen = set()          # every path considered, watched or not
        self._wds = {}              # directory -> watch descriptor
        self._names = {}            # watch descriptor -> (directory, set of file names)
        self._mtimes = {}           # fallback only: path -> mtime
        self._modules = -1          # len(sys.modules) at the last scan
        self._unwatched = 0
        self._inotify = None
        self._thread = None
        self._pending = []          # tracked before start()

    # -- what is watched ------------------------------------------------------------------------

    def track(self, path):
        """Watches one more file (the WSGI script, a configuration file...)."""
        path = os.path.abspath(path)
        with self._lock:
            if self._thread is None:
                self._pending.append(path)
            elif path not in self._seen:
                self._add(path)

    def files(self):
        with self._lock:
            if self._inotify is None:
                return sorted(self._mtimes)
            return sorted(os.path.join(d, n) for d, names in self._names.values() for n in names)

    def _scan(self):
        count = len(sys.modules)
        if count == self._modules:
            return
        self._modules = count
        with self._lock:
            for module in list(sys.modules.values()):
                path = module_source(module)
                if path is not None and path not in self._seen:
                    self._add(path)

    def _add(self, path):
        self._seen.add(path)
        if self._inotify is None:
            try:
                self._mtimes[path] = os.stat(path).st_mtime
            except OSError:
                pass
            return
        directory, name = os.path.split(path)
        wd = self._wds.get(directory)
        if wd is None:
            try:
                wd = self._inotify.add_watch(directory, DIRECTORY_EVENTS | IN_ONLYDIR)
            except OSError as e:
                self._unwatched += 1
                if self._unwatched == 1 or e.errno == errno.ENOSPC:
                    _log('WSGI04003', "cannot watch directory '%s' (%s): changes to its files will not "
                         'restart the process' % (directory, e.strerror))
                return
            self._wds[directory] = wd
        # Two paths to one directory (symbolic links) share the watch descriptor.
        self._names.setdefault(wd, (directory, set()))[1].add(name)

    # -- running --------------------------------------------------------------------------------

    def start(self):
        with self._lock:
            if self._thread is not None:
                return
            try:
                self._inotify = _Inotify()
            except (OSError, AttributeError) as e:
                _log('WSGI04004', 'inotify is not available (%s): checking modification times every %gs '
                     'instead' % (e, self.interval))
            target = self._watch if self._inotify is not None else self._poll
            self._thread = threading.Thread(target=target, name='mod_wsgi-monitor', daemon=True)
            for path in self._pending:
                if path not in self._seen:
                    self._add(path)
            self._pending = []
        self._scan()
        self._thread.start()
        _log('WSGI04001', 'Starting change monitor: %d files of imported modules are watched.'
             % len(self._seen))

    def _changed(self, events):
        """The first watched file that an event is about, or None."""
        with self._lock:
            for wd, mask, name in events:
                if mask & IN_Q_OVERFLOW:
                    return '(events lost: the inotify queue overflowed)'
                entry = self._names.get(wd)
                if entry is None:
                    continue
                directory, names = entry
                if mask & DIRECTORY_GONE and names:
                    return os.path.join(directory, sorted(names)[0])
                if name in names:
                    return os.path.join(directory, name)
        return None

    def _watch(self):
        # poll(), not select(): a busy daemon's descriptors can be numbered past select()'s 1024.
        poller = select.poll()
        poller.register(self._inotify.fd, select.POLLIN)
        while True:
            if poller.poll(self.interval * 1000):
                path = self._changed(self._inotify.read_events())
                if path is not None:
                    # Editors often write in several steps (move away, create, write): let them finish
                    # so the new process imports the whole new file.
                    deadline = time.monotonic() + 1.0
                    while time.monotonic() < deadline and poller.poll(self.settle * 1000):
                        self._inotify.read_events()
                    return self._restart(path)
            self._scan()

    def _poll(self):
        while True:
            time.sleep(self.interval)
            self._scan()
            with self._lock:
                items = list(self._mtimes.items())
            for path, mtime in items:
                try:
                    changed = os.stat(path).st_mtime != mtime
                except OSError:
                    changed = True
                if changed:
                    return self._restart(path)

    @staticmethod
    def _signal_restart(path):
        _log('WSGI04002', "Change detected to '%s': triggering process restart." % path)
        os.kill(os.getpid(), signal.SIGINT)


def _get_monitor():
    global _monitor
    with _lock:
        if _monitor is None:
            _monitor = Monitor()
        return _monitor


def start_reloader(interval=1.0):
    """Starts the change monitor of this process (once); returns it."""
    monitor = _get_monitor()
    with _lock:
        monitor.interval = min(monitor.interval, interval)
        monitor.start()
    return monitor


def track_changes(path):
    """Also restart when `path` changes, once start_reloader() has been called (as mod_wsgi's)."""
    _get_monitor().track(path)
