// Packages, bindings and the shared /whisk.system/utils catalog through the official
// `openwhisk` npm client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { client, unique } from './helpers.mjs'

const ow = client()
const ECHO = 'function main(params) { return params; }'

test('packages.create, get, list, update and delete round-trip', async () => {
  const name = unique('pkg')
  const created = await ow.packages.create({
    name,
    package: { parameters: [{ key: 'a', value: 'pkg' }], annotations: [{ key: 'description', value: 'tools' }] }
  })
  assert.equal(created.name, name)
  assert.equal(created.namespace, 'guest')
  assert.equal(created.version, '0.0.1')
  assert.deepEqual(created.binding, {})
  try {
    await assert.rejects(ow.packages.create({ name }), (e) => e.statusCode === 409)
    await ow.actions.create({ name: `${name}/echo`, action: ECHO })
    const fetched = await ow.packages.get({ name })
    assert.deepEqual(fetched.actions.map((a) => a.name), ['echo'])
    assert.deepEqual(fetched.feeds, [])
    const listed = await ow.packages.list()
    const item = listed.find((p) => p.name === name)
    assert.equal(item.binding, false)
    const updated = await ow.packages.update({ name, package: { publish: true } })
    assert.equal(updated.version, '0.0.2')
    assert.equal(updated.publish, true)
    const result = await ow.actions.invoke({ name: `${name}/echo`, blocking: true, result: true, params: { b: 1 } })
    assert.deepEqual(result, { a: 'pkg', b: 1 })
    await assert.rejects(ow.packages.delete({ name }), (e) => e.statusCode === 409)
  } finally {
    await ow.actions.delete({ name: `${name}/echo` }).catch(() => {})
    await ow.packages.delete({ name })
  }
  await assert.rejects(ow.packages.get({ name }), (e) => e.statusCode === 404)
})

test('a binding of /whisk.system/utils runs the catalog actions with bound parameters', async () => {
  const name = unique('myutils')
  const created = await ow.packages.create({
    name,
    package: {
      binding: { namespace: 'whisk.system', name: 'utils' },
      parameters: [{ key: 'lines', value: ['b', 'a'] }]
    }
  })
  assert.deepEqual(created.binding, { namespace: 'whisk.system', name: 'utils' })
  try {
    const fetched = await ow.packages.get({ name })
    assert.equal(fetched.actions.length, 8)
    const sorted = await ow.actions.invoke({ name: `${name}/sort`, blocking: true, result: true })
    assert.deepEqual(sorted, { lines: ['a', 'b'], length: 2 })
    const joined = await ow.actions.invoke({ name: `${name}/cat`, blocking: true, result: true })
    assert.deepEqual(joined, { lines: ['b', 'a'], payload: 'b\na' })
  } finally {
    await ow.packages.delete({ name })
  }
})

test('the shared utils package is readable and invocable across namespaces but not writable', async () => {
  const listed = await ow.packages.list({ namespace: 'whisk.system' })
  assert.deepEqual(listed.map((p) => p.name).sort(), ['alarms', 'mqtt', 'utils'])
  const echoed = await ow.actions.invoke({ name: '/whisk.system/utils/echo', blocking: true, result: true, params: { hi: 'there' } })
  assert.deepEqual(echoed, { hi: 'there' })
  const ns = await ow.actions.invoke({ name: '/whisk.system/utils/namespace', blocking: true, result: true })
  assert.deepEqual(ns, { namespace: 'guest' })
  await assert.rejects(
    ow.actions.create({ name: '/whisk.system/utils/mine', action: ECHO }),
    (e) => e.statusCode === 403
  )
  await assert.rejects(
    ow.packages.update({ name: '/whisk.system/utils', package: {} }),
    (e) => e.statusCode === 403
  )
})
