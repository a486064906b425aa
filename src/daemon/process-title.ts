// The title `ps` shows for a daemon process: display-name, with %{GROUP} expanded as in mod_wsgi,
// defaulting to "(wsgi:NAME)", the same as the argv[0] the Apache parent starts it with. The parent
// passes a padding argument so that Node has room to write a longer title over argv.
import type { DaemonConfig } from '../config/daemon-config'

export function processTitle(c: DaemonConfig): string {
  const group = `(wsgi:${c.group})`
  const name = c.options.displayName
  return name === null || name === '' ? group : name.replaceAll('%{GROUP}', group)
}
