// Apache's log levels and their order; the daemon filters by the LogLevel it was given.
export type LogLevelName =
  | 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug'
  | 'trace1' | 'trace2' | 'trace3' | 'trace4' | 'trace5' | 'trace6' | 'trace7' | 'trace8'

const ORDER: readonly LogLevelName[] = [
  'emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug',
  'trace1', 'trace2', 'trace3', 'trace4', 'trace5', 'trace6', 'trace7', 'trace8',
]

export function levelIndex(level: LogLevelName): number {
  const i = ORDER.indexOf(level)
  return i < 0 ? 4 : i
}

export type AddonLogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug'
const ADDON_LEVELS: readonly AddonLogLevel[] = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug']

/** The addon's LogLevel stops at debug: trace levels map to debug. */
export function toAddonLevel(level: LogLevelName): AddonLogLevel {
  return ADDON_LEVELS[Math.min(levelIndex(level), ADDON_LEVELS.length - 1)]
}
