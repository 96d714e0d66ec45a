// Sequences and conductor actions through the official `openwhisk` npm client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { client, unique } from './helpers.mjs'

const ow = client()
const annotation = (entity, key) => (entity.annotations || []).find((a) => a.key === key)?.value

const SHOUT = 'function main(p) { return { text: String(p.text || "").toUpperCase() } }'
const EXCLAIM = 'function main(p) { return { text: p.text + "!" } }'

test('actions.create with sequence chains components and records them', async () => {
  const shout = unique('shout')
  const exclaim = unique('exclaim')
  const seq = unique('seq')
  await ow.actions.create({ name: shout, action: SHOUT })
  await ow.actions.create({ name: exclaim, action: EXCLAIM })
  try {
    const created = await ow.actions.create({ name: seq, sequence: [`/_/${shout}`, exclaim] })
    assert.deepEqual(created.exec, {
      kind: 'sequence',
      components: [`/guest/${shout}`, `/guest/${exclaim}`]
    })
    assert.equal(annotation(created, 'exec'), 'sequence')

    const result = await ow.actions.invoke({ name: seq, blocking: true, result: true, params: { text: 'hi' } })
    assert.deepEqual(result, { text: 'HI!' })

    const record = await ow.actions.invoke({ name: seq, blocking: true, params: { text: 'yo' } })
    assert.equal(record.response.success, true)
    assert.equal(annotation(record, 'kind'), 'sequence')
    assert.equal(record.logs.length, 2)
    const first = await ow.activations.get({ name: record.logs[0] })
    assert.equal(first.cause, record.activationId)
    assert.deepEqual(first.response.result, { text: 'YO' })
  } finally {
    await ow.actions.delete({ name: seq }).catch(() => {})
    await ow.actions.delete({ name: shout })
    await ow.actions.delete({ name: exclaim })
  }
})

test('a sequence with a missing component is refused with the OpenWhisk message', async () => {
  const seq = unique('dangling')
  await assert.rejects(
    ow.actions.create({ name: seq, sequence: [`/_/${unique('nope')}`] }),
    (err) => err.statusCode === 400 && err.error.error === 'Sequence component does not exist.'
  )
  await assert.rejects(
    ow.actions.create({ name: seq, action: { exec: { kind: 'sequence', components: [] } } }),
    (err) => err.statusCode === 400 && err.error.error === 'No component specified for the sequence.'
  )
})
