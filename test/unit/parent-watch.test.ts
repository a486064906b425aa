// The parent check (src/daemon/parent-watch.ts) and the memory floors (src/config/memory-floor.ts).
import t from 'tap'
import { memoryFloors } from '../../src/config/memory-floor'
import { watchParent } from '../../src/daemon/parent-watch'

t.test('watchParent: fires once when the parent pid changes, never while it stays', async (t) => {
  let parent = 100
  const seen: number[] = []
  watchParent({ parentPid: 100, everyMs: 10, currentParent: () => parent }, (now) => seen.push(now))
  await new Promise((r) => setTimeout(r, 60))
  t.same(seen, [], 'same parent: nothing')
  parent = 1
  await new Promise((r) => setTimeout(r, 60))
  t.same(seen, [1], 'parent gone: called once with the new parent')
  parent = 7
  await new Promise((r) => setTimeout(r, 40))
  t.same(seen, [1], 'and not again')
})

t.test('watchParent: stop() ends the watch; a parent already gone at start fires on the first tick', async (t) => {
  const seen: number[] = []
  const stop = watchParent({ parentPid: 100, everyMs: 10, currentParent: () => 1 }, (now) => seen.push(now))
  await new Promise((r) => setTimeout(r, 40))
  t.same(seen, [1])
  stop()
  stop()
  const none: number[] = []
  const stop2 = watchParent({ parentPid: 100, everyMs: 10, currentParent: () => 1 }, (now) => none.push(now))
  stop2()
  await new Promise((r) => setTimeout(r, 40))
  t.same(none, [], 'stopped before the first tick: never called')
})

t.test('memoryFloors: a base plus each thread stack (stack-size when given)', async (t) => {
  const MiB = 1024 * 1024
  t.same(memoryFloors(1, 0), { virtualMemory: 1036 * MiB, data: 136.5 * MiB })
  t.same(memoryFloors(15, 0), { virtualMemory: 1204 * MiB, data: 255.5 * MiB })
  t.same(memoryFloors(15, 512 * 1024), { virtualMemory: 1091.5 * MiB, data: 143 * MiB })
})
