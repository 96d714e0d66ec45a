// Action lifecycle through the official `openwhisk` npm client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { client, unique, HELLO } from './helpers.mjs'

const ow = client()
const annotation = (entity, key) => (entity.annotations || []).find((a) => a.key === key)?.value

test('namespaces.list returns the guest namespace as a bare string array', async () => {
  const namespaces = await ow.namespaces.list()
  assert.deepEqual(namespaces, ['guest'])
})

test('seed hello flow greets World without a name and the caller with one', async () => {
  const name = unique('hello')
  await ow.actions.create({ name, action: HELLO })
  try {
    const anonymous = await ow.actions.invoke({ name, blocking: true, result: true })
    assert.deepEqual(anonymous, { payload: 'Hello, World!' })
    const named = await ow.actions.invoke({
      name,
      blocking: true,
      result: true,
      params: { name: 'Pi' }
    })
    assert.deepEqual(named, { payload: 'Hello, Pi!' })
  } finally {
    await ow.actions.delete({ name })
  }
})

test('create resolves the default kind and get, list, update and delete round-trip', async () => {
  const name = unique('crud')
  const created = await ow.actions.create({ name, action: HELLO, params: { name: 'param' } })
  assert.equal(created.name, name)
  assert.equal(created.namespace, 'guest')
  assert.equal(created.version, '0.0.1')
  assert.equal(created.exec.kind, 'nodejs:20')
  assert.equal(created.exec.binary, false)
  assert.equal(annotation(created, 'exec'), 'nodejs:20')
  assert.equal(annotation(created, 'provide-api-key'), false)
  assert.deepEqual(created.parameters, [{ key: 'name', value: 'param' }])

  const fetched = await ow.actions.get({ name })
  assert.equal(fetched.exec.code, HELLO)
  const withoutCode = await ow.actions.get({ name, code: false })
  assert.equal(withoutCode.exec.code, undefined)
  assert.equal(withoutCode.exec.kind, 'nodejs:20')

  const listed = await ow.actions.list({ limit: 200 })
  const item = listed.find((a) => a.name === name)
  assert.ok(item, `list contains ${name}`)
  assert.equal(item.exec.code, undefined)
  assert.equal(item.exec.binary, false)
  assert.equal(annotation(item, 'exec'), 'nodejs:20')

  const byDefault = await ow.actions.invoke({ name, blocking: true, result: true })
  assert.deepEqual(byDefault, { payload: 'Hello, param!' })

  const updated = await ow.actions.update({
    name,
    action: HELLO,
    params: { name: 'updated' },
    annotations: { note: 'second' }
  })
  assert.equal(updated.version, '0.0.2')
  assert.deepEqual(updated.parameters, [{ key: 'name', value: 'updated' }])
  assert.equal(annotation(updated, 'note'), 'second')
  assert.equal(annotation(updated, 'exec'), 'nodejs:20')
  const afterUpdate = await ow.actions.invoke({ name, blocking: true, result: true })
  assert.deepEqual(afterUpdate, { payload: 'Hello, updated!' })

  const deleted = await ow.actions.delete({ name })
  assert.equal(deleted.name, name)
  await assert.rejects(ow.actions.get({ name }), (err) => {
    assert.equal(err.statusCode, 404)
    return true
  })
})

test('request params override action params and the merged set reaches the action', async () => {
  const name = unique('params')
  await ow.actions.create({
    name,
    action: 'function main(args) { return { args } }',
    params: { fixed: 1, overridden: 'action' }
  })
  try {
    const result = await ow.actions.invoke({
      name,
      blocking: true,
      result: true,
      params: { overridden: 'request', extra: [1, 2, 3] }
    })
    assert.deepEqual(result.args, { fixed: 1, overridden: 'request', extra: [1, 2, 3] })
  } finally {
    await ow.actions.delete({ name })
  }
})

test('limits given at create are stored whole and shown by get', async () => {
  const name = unique('limits')
  const created = await ow.actions.create({
    name,
    action: HELLO,
    limits: { timeout: 5000, memory: 128, logs: 1 }
  })
  try {
    assert.equal(created.limits.timeout, 5000)
    assert.equal(created.limits.memory, 128)
    assert.equal(created.limits.logs, 1)
    assert.equal(created.limits.concurrency, 1)
    const fetched = await ow.actions.get({ name })
    assert.deepEqual(fetched.limits, created.limits)
  } finally {
    await ow.actions.delete({ name })
  }
})

test('creating an existing action without overwrite rejects with 409 and the error body', async () => {
  const name = unique('dup')
  await ow.actions.create({ name, action: HELLO })
  try {
    await assert.rejects(ow.actions.create({ name, action: HELLO }), (err) => {
      assert.equal(err.statusCode, 409)
      assert.equal(err.error.error, 'resource already exists')
      assert.equal(typeof err.error.code, 'string')
      return true
    })
  } finally {
    await ow.actions.delete({ name })
  }
})

test('getting, invoking and deleting a missing action reject with 404 and the error body', async () => {
  const name = unique('missing')
  for (const call of [
    () => ow.actions.get({ name }),
    () => ow.actions.invoke({ name, blocking: true }),
    () => ow.actions.delete({ name })
  ]) {
    await assert.rejects(call(), (err) => {
      assert.equal(err.statusCode, 404)
      assert.equal(err.error.error, 'The requested resource does not exist.')
      assert.equal(typeof err.error.code, 'string')
      return true
    })
  }
})

test('blocking invoke returns the full activation record with empty logs', async () => {
  const name = unique('blocking')
  await ow.actions.create({ name, action: HELLO })
  try {
    const activation = await ow.actions.invoke({ name, blocking: true, params: { name: 'rec' } })
    assert.match(activation.activationId, /^[0-9a-f]{32}$/)
    assert.equal(activation.name, name)
    assert.equal(activation.namespace, 'guest')
    assert.equal(activation.response.status, 'success')
    assert.equal(activation.response.success, true)
    assert.deepEqual(activation.response.result, { payload: 'Hello, rec!' })
    assert.deepEqual(activation.logs, [])
    assert.ok(activation.end >= activation.start)
  } finally {
    await ow.actions.delete({ name })
  }
})

test('a blocking invoke of an action that rejects rejects with the application error record', async () => {
  const name = unique('rejects')
  await ow.actions.create({
    name,
    action: 'function main() { return Promise.reject({ reason: "nope" }) }'
  })
  try {
    await assert.rejects(ow.actions.invoke({ name, blocking: true }), (err) => {
      assert.equal(err.statusCode, 502)
      assert.equal(err.error.code, undefined)
      assert.equal(err.error.response.status, 'application error')
      assert.deepEqual(err.error.response.result, { error: { reason: 'nope' } })
      return true
    })
  } finally {
    await ow.actions.delete({ name })
  }
})

test('a zip action from a Buffer runs its package.json main module', async () => {
  const name = unique('zip')
  const zip = readFileSync(new URL('./fixtures/greeter.zip', import.meta.url))
  const created = await ow.actions.create({ name, action: zip, kind: 'nodejs:20' })
  try {
    assert.equal(created.exec.binary, true)
    const result = await ow.actions.invoke({
      name,
      blocking: true,
      result: true,
      params: { name: 'edge' }
    })
    assert.deepEqual(result, { greeting: 'HELLO EDGE!' })
  } finally {
    await ow.actions.delete({ name })
  }
})
