// Parametrising a test file by CPython version: test/apache/python-3.N/*.test.ts are one line each.
import t from 'tap'
import { readyPython, testVenv } from './pythons'

/**
 * Runs a test file of the default Python again under CPython `version` (the wrappers under
 * test/apache/python-3.N/): every Apache it starts gets `WSGIPythonHome` a virtualenv of that Python
 * (test/helpers/apache.ts reads MOD_WSGI_TEST_PYTHON_HOME), so that each of its groups without a
 * python-home of its own embeds it. Skipped, with the reason, when that Python is absent.
 */
export function onPython(version: string, load: () => Promise<unknown>): void {
  const py = readyPython(version)
  if (typeof py === 'string') {
    t.plan(0, py)
    return
  }
  process.env.MOD_WSGI_TEST_PYTHON_HOME = testVenv(py)
  t.comment(`under CPython ${version}: WSGIPythonHome ${process.env.MOD_WSGI_TEST_PYTHON_HOME}`)
  load().catch((e: unknown) => t.fail(`loading the test file: ${String(e)}`))
}
