// The records WebSocket messages travel as between the daemon and the event loop
// (src/daemon/websocket/records.ts, native/addon/py/asgi_ws_records.h): encoded in order, decoded as
// views, a record cut short refused.
import t from 'tap'
import { closePayload, encodeRecords, forEachRecord, RecordKind, recordHeader } from '../../src/daemon/websocket/records'

t.test('records round-trip in order, empty payloads included', async (t) => {
  const batch = encodeRecords([
    { kind: RecordKind.TEXT, data: Buffer.from('héllo') },
    { kind: RecordKind.BINARY, data: Buffer.alloc(0) },
    { kind: RecordKind.BINARY, data: Buffer.alloc(70000, 7) },
    { kind: RecordKind.CLOSE, data: closePayload(4001, 'bye') },
  ])
  t.equal(batch.length, 5 * 4 + Buffer.byteLength('héllo') + 70000 + 2 + 3)
  const got: Array<[number, Buffer]> = []
  forEachRecord(batch, (k, p) => got.push([k, Buffer.from(p)]))
  t.same(got.map(([k]) => k), [1, 2, 2, 3])
  t.equal(got[0][1].toString(), 'héllo')
  t.equal(got[1][1].length, 0)
  t.ok(got[2][1].equals(Buffer.alloc(70000, 7)))
  t.equal(got[3][1].readUInt16BE(0), 4001)
  t.equal(got[3][1].subarray(2).toString(), 'bye')
})

t.test('a header alone, then the payload, is the same record', async (t) => {
  const data = Buffer.from('abc')
  t.same(Buffer.concat([recordHeader(RecordKind.TEXT, 3), data]), encodeRecords([{ kind: RecordKind.TEXT, data }]))
})

t.test('a record cut short throws', async (t) => {
  const batch = encodeRecords([{ kind: RecordKind.TEXT, data: Buffer.from('abcdef') }])
  t.throws(() => forEachRecord(batch.subarray(0, 8), () => undefined), /cut short/)
  t.throws(() => forEachRecord(batch.subarray(0, 3), () => undefined), /cut short/)
})
