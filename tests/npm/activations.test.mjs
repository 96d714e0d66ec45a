// Activation records through the official `openwhisk` npm client.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { client, unique, eventually, LOG_LINE } from './helpers.mjs'

const ow = client()
const name = unique('logger')
const CODE = `function main(params) {
  console.log('hello from stdout ' + params.n);
  console.error('hello from stderr ' + params.n);
  return { n: params.n };
}`

before(async () => {
  await ow.actions.create({ name, action: CODE })
})

after(async () => {
  await ow.actions.delete({ name })
})

test('non-blocking invoke answers with an activation id that get resolves eventually', async () => {
  const { activationId } = await ow.actions.invoke({ name, params: { n: 1 } })
  assert.match(activationId, /^[0-9a-f]{32}$/)
  const activation = await eventually(() => ow.activations.get({ activationId }))
  assert.equal(activation.activationId, activationId)
  assert.equal(activation.name, name)
  assert.equal(activation.response.status, 'success')
  assert.equal(activation.response.success, true)
  assert.deepEqual(activation.response.result, { n: 1 })
})

test('activations.logs returns formatted stdout and stderr lines of the run', async () => {
  const { activationId } = await ow.actions.invoke({ name, blocking: true, params: { n: 2 } })
  const { logs } = await eventually(async () => {
    const got = await ow.activations.logs({ activationId })
    return got.logs.length >= 2 ? got : null
  })
  for (const line of logs) assert.match(line, LOG_LINE)
  assert.ok(logs.some((l) => /stdout: hello from stdout 2$/.test(l)), logs.join('\n'))
  assert.ok(logs.some((l) => /stderr: hello from stderr 2$/.test(l)), logs.join('\n'))
})

test('activations.result returns the result with success and status', async () => {
  const { activationId } = await ow.actions.invoke({ name, blocking: true, params: { n: 3 } })
  const result = await eventually(() => ow.activations.result({ activationId }))
  assert.deepEqual(result.result, { n: 3 })
  assert.equal(result.success, true)
  assert.equal(result.status, 'success')
})

test('activations.list filters by action name and lists newest first with summaries', async () => {
  const first = await ow.actions.invoke({ name, blocking: true, params: { n: 4 } })
  const second = await ow.actions.invoke({ name, blocking: true, params: { n: 5 } })
  const listed = await eventually(async () => {
    const list = await ow.activations.list({ name, limit: 200 })
    const ids = list.map((a) => a.activationId)
    return ids.includes(first.activationId) && ids.includes(second.activationId) ? list : null
  })
  for (const a of listed) assert.equal(a.name, name)
  const ids = listed.map((a) => a.activationId)
  assert.ok(ids.indexOf(second.activationId) < ids.indexOf(first.activationId), 'newest first')
  const summary = listed.find((a) => a.activationId === second.activationId)
  assert.equal(summary.statusCode, 0)
  assert.ok(summary.annotations.some((a) => a.key === 'kind' && a.value === 'nodejs:20'))

  const counted = await ow.activations.list({ name, count: true })
  assert.ok(counted.activations >= 2, JSON.stringify(counted))
})

test('activations.list with docs returns full records including logs', async () => {
  const { activationId } = await ow.actions.invoke({ name, blocking: true, params: { n: 6 } })
  const record = await eventually(async () => {
    const list = await ow.activations.list({ name, docs: true, limit: 200 })
    const found = list.find((a) => a.activationId === activationId)
    return found && found.logs.length >= 2 ? found : null
  })
  assert.equal(record.response.status, 'success')
  assert.deepEqual(record.response.result, { n: 6 })
})

test('getting an unknown activation id rejects with 404', async () => {
  await assert.rejects(ow.activations.get({ activationId: '0'.repeat(32) }), (err) => {
    assert.equal(err.statusCode, 404)
    assert.equal(typeof err.error.error, 'string')
    assert.equal(typeof err.error.code, 'string')
    return true
  })
})
