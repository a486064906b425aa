// test/apache/exit-clean.test.ts under CPython 3.13, whose Py_FinalizeEx from a thread other than the
// one that initialised Python finalises with that thread's state (see runtime.cc, Runtime::finalize).
import { onPython } from '../../helpers/on-python'

onPython('3.13', () => import('../exit-clean.test'))
