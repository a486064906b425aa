// The contract between the daemon (src/daemon) and the CPython addon (native/addon), as seen from
// TypeScript. src/native/index.ts is the one module that loads the .node binary; it validates every
// option before native code sees it and exposes exactly this interface.

/** Everything the addon needs to start Python in this daemon process. */
export interface PythonOptions {
  /** sys.executable / program name: /usr/bin/python3.11, or <virtualenv>/bin/python for python-home. */
  programName: string
  /** python-home (or WSGIPythonHome): a virtualenv or prefix; null for Debian's own /usr. */
  home: string | null
  /** Entries added to sys.path, in order, before site-packages (python-path, WSGIPythonPath). */
  path: string[]
  /** Put '' first on sys.path (the WSGIDaemonProcess `home=` option, release notes Features Changed 5). */
  cwdFirstOnPath: boolean
  /** WSGIPythonHashSeed: null (Python's default), 'random', or 0..4294967295. */
  hashSeed: number | 'random' | null
  dontWriteBytecode: boolean
  /** WSGIPythonOptimize: 0, 1 or 2. */
  optimize: number
  /** WSGIPythonWarnings entries, as for `python -W`. */
  warnings: string[]
  /** WSGIRestrictSignal: signal.signal() from apps logs a warning and is ignored. */
  restrictSignal: boolean
  /** WSGIRestrictStdin / WSGIRestrictStdout: sys.stdin / sys.stdout use raise an error, as in mod_wsgi. */
  restrictStdin: boolean
  restrictStdout: boolean
  /** Values seen by apps in the `mod_wsgi` module and in environ. */
  processGroup: string
  /** Maximum requests run at once in this process (the `threads` option); each application group gets
   *  its own worker threads, at most this many, created on demand. */
  threads: number
  /** Thread stack size in bytes, 0 for the default. */
  stackSize: number
  /** wsgi.multithread and wsgi.multiprocess. */
  multithread: boolean
  multiprocess: boolean
  /** wsgi.run_once: true only for threads=1 with maximum-requests=1, as in mod_wsgi. */
  runOnce: boolean
  /** The daemon's log level; the addon writes lines below it only when verbose. */
  logLevel: LogLevel
  /** Log each step of interpreter and script setup (WSGIVerboseDebugging). */
  verbose: boolean
  /** WSGIPerInterpreterGIL: sub-interpreters (application groups) get their own GIL (PEP 684, CPython
   *  3.12+; ignored, with a warning line, on older versions). */
  perInterpreterGil: boolean
  /** sys.setswitchinterval() in seconds for every GIL of the process (switch-interval); null: Python's
   *  default (0.005). */
  switchInterval: number | null
  /** The event loop of ASGI applications (asgi-loop=): asyncio's, or uvloop's when it can be imported. */
  asgiLoop: 'asyncio' | 'uvloop'
}

export type LogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug'

/**
 * The `code` of every error the addon throws (native/addon/errors.h): match on it, never on the text.
 *   ERR_WSGI_INVALID_ARG (TypeError)  a value of the wrong type was passed
 *   ERR_WSGI_OUT_OF_RANGE (RangeError) a number outside what is allowed
 *   ERR_WSGI_MALFORMED (TypeError)    a REQUEST or AUTH payload from the Apache child does not parse
 *   ERR_WSGI_CLOSED                   the bridge is shut down
 *   ERR_WSGI_DUPLICATE_ID             a request id already in flight
 *   ERR_WSGI_NO_MEMORY                an allocation failed
 *   ERR_WSGI_PYTHON_START             Python could not be started
 *   ERR_WSGI_SYSTEM                   a system call failed (the error has `errno`)
 *   ERR_WSGI_SCRIPT                   a script failed to load (preload; the message is Python's error)
 *   ERR_WSGI_ASGI_STARTUP             an ASGI application's lifespan startup failed (preload): not served
 *   ERR_WSGI_INTERNAL                 anything else
 */
export type AddonErrorCode =
  | 'ERR_WSGI_INVALID_ARG'
  | 'ERR_WSGI_OUT_OF_RANGE'
  | 'ERR_WSGI_MALFORMED'
  | 'ERR_WSGI_CLOSED'
  | 'ERR_WSGI_DUPLICATE_ID'
  | 'ERR_WSGI_NO_MEMORY'
  | 'ERR_WSGI_PYTHON_START'
  | 'ERR_WSGI_SYSTEM'
  | 'ERR_WSGI_SCRIPT'
  | 'ERR_WSGI_ASGI_STARTUP'
  | 'ERR_WSGI_INTERNAL'

/**
 * Receives what a request produces, on the JS thread, through the addon's single thread-safe function.
 *
 * `data` is always complete response frames of docs/protocol.md (HEAD, BODY, END, ERROR, AUTH_RESULT,
 * VAR_LOOKUP — or for a file, one FILE frame whose descriptor is `fd`), ready to be written to the
 * request's connection as they are. A VAR_LOOKUP always comes alone in its event; its answer goes back
 * through `varValue()`.
 * `final` is true for the last event of a request: its worker thread is free again, the iterable's close()
 * has been called and the connection may take the next request.
 *
 * `info` says what `data` carries (OutputInfo of src/protocol/wire.ts: the response ends, failed, was
 * not run (GOAWAY), or a VAR_LOOKUP), computed by the addon where it made the frames.
 *
 * Returning true asks the worker to stop producing output for this request until `resume(id)` is called
 * (the connection's socket is backed up); the worker waits with the GIL released.
 */
export type OutputHandler = (id: number, data: Buffer, final: boolean, fd: number, info: number) => boolean | void

/** The worker has consumed enough buffered input that reading the connection may go on. */
export type InputResumeHandler = (id: number) => void

/** Request `id` no longer holds a worker thread: its application turned out to be ASGI and the request
 *  now runs on its application group's event loop (its output and `final` event still come). */
export type DetachedHandler = (id: number) => void

export interface BridgeHandlers {
  output: OutputHandler
  inputResume: InputResumeHandler
  /** Optional: without it the caller keeps counting such a request against `threads`. */
  detached?: DetachedHandler
}

export interface Bridge {
  /**
   * Queues a request for a worker thread. `request` is the payload of a REQUEST frame exactly as received
   * (flags, request_start, variables): the addon builds the environ from it in native code.
   * `hasBody` is the BODY_FOLLOWS flag; without it wsgi.input is empty from the start.
   * The caller never has more than `threads` requests submitted, not yet final and holding a thread.
   *
   * Returns true when the request went straight to its application group's ASGI event loop (its
   * application is known to be ASGI): it holds no thread. With `loopOnly`, a request that would need a
   * thread is not taken (false, and nothing happened): how the caller starts ASGI requests while every
   * thread is busy. A request that does take a thread may still move to the loop later (`detached`).
   */
  submit(id: number, request: Buffer, hasBody: boolean, loopOnly?: boolean): boolean | void

  /**
   * Queues a hook (WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript) for a worker thread.
   * `auth` is the payload of an AUTH frame exactly as received. The hook ends with one output event,
   * `final`, whose data is an AUTH_RESULT frame (or ERROR); meanwhile it may post VAR_LOOKUP frames.
   * Counts against the same `threads` limit as submit().
   */
  submitAuth(id: number, auth: Buffer): void

  /**
   * The Apache child's VAR_VALUE for the VAR_LOOKUP that request `id` posted (mod_ssl.var_lookup()):
   * the value's bytes, or null when the variable does not exist. Returns false when the request was not
   * waiting for one (it ended or was aborted meanwhile).
   */
  varValue(id: number, value: Buffer | null): boolean

  /** Appends request body bytes for `id`; returns how many bytes are now buffered, unread by the app.
   *  Above 256 KiB the caller stops reading the connection until `inputResume(id)` fires (below 64 KiB). */
  input(id: number, chunk: Buffer): number

  /** The request body is complete: reads past what is buffered return b''. */
  endInput(id: number): void

  /** The connection is gone: reads of wsgi.input and writes of output raise OSError from now on, and the
   *  request ends as soon as the app lets it (its `final` event still comes). Safe to call at any time. */
  abort(id: number): void

  /** An ASGI request's task is cancelled (request-timeout): its `final` event answers 504, or ends the
   *  response incomplete if it had begun. Ignored for a request on a worker thread. Optional for doubles. */
  cancel?(id: number): void

  /** Lets a paused request (its output handler returned true) produce output again. */
  resume(id: number): void

  /** An output event's `data` has been written and is not used any more: its memory is freed now
   *  instead of at the next garbage collection (the Buffer becomes empty). Anything but a Buffer
   *  given by the output handler is left alone. */
  release(data: Buffer): void

  /** Loads a script into an application group ahead of requests (WSGIImportScript). Rejects with the
   *  Python error's text when the script fails. When the script's `application` is ASGI, its lifespan
   *  startup runs first; if that fails the rejection's `code` is 'ERR_WSGI_ASGI_STARTUP' (do not serve). */
  preload(script: string, applicationGroup: string): Promise<void>

  /** Date.now() of the last time a watchdog thread obtained the GIL (it tries every second). */
  lastGilAcquired(): number

  /** Writes the Python stack of every thread of every interpreter to the error log (fd 2). Safe to call
   *  while a thread holds the GIL forever. */
  dumpStacks(reason: string): void

  /** interrupt-timeout: raises mod_wsgi.RequestTimeout in the thread running request `id`, from a
   *  thread of the addon (the JavaScript thread never waits for a GIL). If it unwinds before the
   *  response began, the request ends with 504. Returns false when `id` is not running Python now
   *  (queued, finished, or waiting for a worker); the caller may ask again. Optional so that test
   *  doubles need not provide it. */
  interrupt?(id: number): boolean

  /** How many requests have ended in MemoryError so far (raised by the app, or an allocation in native
   *  code that failed): under memory-limit / virtual-memory-limit the daemon then restarts. Always
   *  provided by the addon; optional so that test doubles need not. */
  memoryErrors?(): number

  /** The scripts loaded so far in this process (what a successor imports before it is ready). Always
   *  provided by the addon; optional so that test doubles need not. */
  loadedScripts?(): Array<{ script: string; applicationGroup: string }>

  /** Takes these versions of scripts (modification time in µs) as current (a successor could not load
   *  them): such a change no longer makes requests restart the process, until the script changes again. */
  acceptScriptChanges?(versions: Array<{ script: string; mtimeUs: number }>): void

  /** Ends Python: lets workers finish for at most `timeoutMs`, then finalises. Returns false when it had
   *  to give up (the caller exits anyway). Safe to call twice. */
  shutdown(timeoutMs: number): boolean
}

/** Process-level primitives Node lacks, provided by the addon for src/daemon's identity and limits code. */
export interface ProcessControl {
  setrlimit(resource: RlimitResource, soft: number, hard: number): void
  getrlimit(resource: RlimitResource): { soft: number; hard: number }
  /** setpriority(PRIO_PROCESS, 0, nice). */
  setPriority(nice: number): void
  /** mallopt(M_ARENA_MAX, n): bounds address space taken by thread malloc arenas. */
  setMallocArenaMax(n: number): void
  /** sendmsg() of `data` (at least 1 byte) on the connected UNIX socket `socketFd` with `fd` attached as
   *  SCM_RIGHTS: how a FILE frame's descriptor reaches the Apache child (Node's sockets cannot send
   *  ancillary data). Non-blocking: returns the bytes sent, 0 when the socket was full and nothing (not
   *  even the descriptor) was sent. Call it only when Node's write queue for the socket is empty. The
   *  caller still owns and closes `fd`. Throws on other errors. Always provided by src/native/index.ts. */
  sendWithFd?(socketFd: number, data: Buffer, fd: number): number
  /** alarm(seconds): the process ends by SIGALRM after that long (0 cancels); needs no thread or memory,
   *  so it still works under a tight virtual-memory-limit. */
  alarm?(seconds: number): void
  /** SO_SNDBUF / SO_RCVBUF of a socket (send-buffer-size, receive-buffer-size); 0 leaves one as it is. */
  setSocketBuffers?(fd: number, send: number, receive: number): void
  /** setlocale(LC_ALL, name) (the `locale` option): the locale now in effect, or null if unsupported. */
  setLocale?(name: string): string | null
  /** A close-on-exec duplicate of `fd` (numbered 3 or above). The daemon listens on duplicates of the
   *  group's socket so that it can stop accepting (close one) and start again. Throws on failure. */
  dupFd?(fd: number): number
  /** madvise(MADV_DONTNEED) over the read-only, never-copied mappings of the process's own executable:
   *  Node's start-up code and data leave the process's resident set (they stay in the page cache and
   *  whatever is used again faults back in). Returns the bytes that were resident there. */
  releaseStartupPages?(): number
  /** The whole file `fd` refers to (a memfd: the board segment, fd 4) mapped shared and read-write, as
   *  a Buffer over that memory: what the daemon writes there other processes see at once. */
  mapShared?(fd: number): Buffer
}

export type RlimitResource = 'cpu' | 'data' | 'as' | 'stack' | 'nofile'
