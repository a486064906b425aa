// The addon's errors carry a stable `code` (AddonErrorCode in types.ts, native/addon/errors.h).
import type { AddonErrorCode } from './types'

/** The addon's code of a thrown value, or null when it is not one of the addon's errors. */
export function addonErrorCode(e: unknown): AddonErrorCode | null {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('ERR_WSGI_') ? (code as AddonErrorCode) : null
}
