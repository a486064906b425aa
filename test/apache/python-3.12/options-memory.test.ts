// test/apache/options-memory.test.ts under CPython 3.12 (issue 18: what works on Debian's 3.11 works on the others).
import { onPython } from '../../helpers/on-python'

onPython('3.12', () => import('../options-memory.test'))
