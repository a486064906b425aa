// The one error type of src/protocol: whatever is wrong with bytes received, the reader and the payload
// decoders throw this and nothing else, so a connection handler can tell "peer sent garbage" (drop that
// connection) from a bug (crash loudly).

export type ProtocolErrorKind =
  | 'version' // unknown protocol version in a frame header
  | 'type' // unknown frame type
  | 'not-allowed' // a known type that the current state does not allow
  | 'too-large' // payload length over the limit for its type
  | 'too-small' // payload length under the minimum for its type
  | 'malformed' // payload contents do not parse (truncated string, bad count, reserved bits...)

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError'
  constructor(
    readonly kind: ProtocolErrorKind,
    message: string,
  ) {
    super(message)
  }
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError
}
