// The daemon's one logger: lines formatted like Apache's default ErrorLogFormat, written to fd 2 (the
// Apache parent gave it the main server's error log) with one write() each, so lines of several
// processes never interleave mid-line. Only levels passing the configured LogLevel are written.
// Developer debug output goes through util.debuglog('mod_wsgi') (NODE_DEBUG=mod_wsgi), not here.
import { writeSync } from 'node:fs'
import { debuglog } from 'node:util'
import type { Message } from './errors'
import { levelIndex, type LogLevelName } from './log-levels'

export const debug = debuglog('mod_wsgi')

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

const p2 = (n: number) => (n < 10 ? `0${n}` : `${n}`)

/** Apache's `%{u}t`: local time with microseconds, e.g. "Tue Nov 24 20:20:03.123456 2026". */
export function apacheTime(epochUs: number): string {
  const d = new Date(Math.floor(epochUs / 1000))
  const us = String(Math.floor(epochUs % 1_000_000)).padStart(6, '0')
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${us} ${d.getFullYear()}`
}

function nowUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000)
}

export class Logger {
  private threshold: number

  constructor(
    level: LogLevelName = 'warn',
    private readonly fd = 2,
  ) {
    this.threshold = levelIndex(level)
  }

  setLevel(level: LogLevelName): void {
    this.threshold = levelIndex(level)
  }

  enabled(level: LogLevelName): boolean {
    return levelIndex(level) <= this.threshold
  }

  /** Logs a catalogued message: "WSGI02nnn: text". */
  report<A extends unknown[]>(msg: Message<A>, ...args: A): void {
    this.reportTagged('', msg, ...args)
  }

  /** Logs a catalogued message about one request: `tag` names it as Apache's lines do,
   *  "[client ADDR:PORT] [request ID] " (exchange.ts, tag()), before the code. */
  reportTagged<A extends unknown[]>(tag: string, msg: Message<A>, ...args: A): void {
    if (!this.enabled(msg.level)) return
    let text: string
    try {
      text = msg.text(...args)
    } catch (e) {
      text = `(message formatting failed: ${String(e)})`
    }
    this.line(msg.level, `${tag}${msg.code}: ${text}`)
  }

  /** Writes one formatted line, whatever the level filter says (callers filter). Never throws. */
  line(level: LogLevelName, text: string): void {
    // One line: embedded newlines would break "one line per event" for readers of the log.
    const body = text.includes('\n') ? text.replace(/\r?\n/g, '\\n') : text
    const line = `[${apacheTime(nowUs())}] [wsgi:${level}] [pid ${process.pid}:tid ${process.pid}] ${body}\n`
    const buf = Buffer.from(line, 'utf8')
    let off = 0
    for (let tries = 0; off < buf.length && tries < 100; tries++) {
      try {
        off += writeSync(this.fd, buf, off)
      } catch (e) {
        // A non-blocking pipe that is full: retry briefly; anything else: nowhere left to report.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return
      }
    }
  }
}

/** The process-wide logger; main.ts sets its level from the configuration. */
export const log = new Logger('warn')
