// Counts the leaf test points of a TAP stream (assertions and empty subtests) and prints
// "N passed, N failed". A parent's own point is not counted, except a failed parent none of whose leaves
// failed (a timeout, an exception outside any assertion): that counts as one failure.
'use strict'
const points = []
for (const line of require('node:fs').readFileSync(0, 'utf8').split('\n')) {
  const m = /^(\s*)(not ok|ok)\b/.exec(line)
  if (m) points.push({ indent: m[1].length, ok: m[2] === 'ok' })
}
let passed = 0
let failed = 0
points.forEach((p, i) => {
  const isParent = i > 0 && points[i - 1].indent > p.indent
  if (!isParent) {
    if (p.ok) passed++
    else failed++
    return
  }
  if (p.ok) return
  let childFailed = false
  for (let j = i - 1; j >= 0 && points[j].indent > p.indent; j--) if (!points[j].ok) childFailed = true
  if (!childFailed) failed++
})
// A run that produced no test points at all (a crash before any test) is still a failure.
if (passed === 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed`)
