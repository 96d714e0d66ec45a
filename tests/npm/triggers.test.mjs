// Triggers and rules through the official `openwhisk` npm client: CRUD, fire (invoke),
// enable/disable, and the trigger activation that names the rule and the action activation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { client, eventually, unique } from './helpers.mjs'

const ow = client()
const ECHO = 'function main(params) { return params; }'

test('triggers.create, get, list, update and delete round-trip', async () => {
  const name = unique('trg')
  const created = await ow.triggers.create({
    name,
    trigger: { parameters: [{ key: 'a', value: 1 }], annotations: [{ key: 'description', value: 'tick' }] }
  })
  assert.equal(created.name, name)
  assert.equal(created.namespace, 'guest')
  assert.equal(created.version, '0.0.1')
  assert.deepEqual(created.limits, {})
  try {
    await assert.rejects(ow.triggers.create({ name }), (e) => e.statusCode === 409)
    const fetched = await ow.triggers.get({ name })
    assert.deepEqual(fetched.parameters, [{ key: 'a', value: 1 }])
    const listed = await ow.triggers.list()
    const item = listed.find((t) => t.name === name)
    assert.ok(item, 'the new trigger is listed')
    assert.equal(item.parameters, undefined)
    const updated = await ow.triggers.update({ name, trigger: { parameters: [{ key: 'b', value: 2 }] } })
    assert.equal(updated.version, '0.0.2')
    assert.deepEqual(updated.parameters, [{ key: 'b', value: 2 }])
    assert.deepEqual(updated.annotations, [{ key: 'description', value: 'tick' }])
    await assert.rejects(
      ow.triggers.create({ name: unique('feedless'), trigger: { annotations: [{ key: 'feed', value: 'alarm' }] } }),
      (e) => e.statusCode === 400 && e.error.error === 'Feed name is not valid'
    )
  } finally {
    await ow.triggers.delete({ name })
  }
  await assert.rejects(ow.triggers.get({ name }), (e) => e.statusCode === 404)
})

test('rules link a trigger to an action; fire runs it and records the trigger activation', async () => {
  const trigger = unique('t')
  const action = unique('echo')
  const rule = unique('r')
  await ow.actions.create({ name: action, action: ECHO })
  await ow.triggers.create({ name: trigger, trigger: { parameters: [{ key: 'a', value: 'trigger' }, { key: 'b', value: 'trigger' }] } })
  try {
    const created = await ow.rules.create({ name: rule, action, trigger })
    assert.equal(created.status, 'active')
    assert.deepEqual(created.trigger, { path: 'guest', name: trigger })
    assert.deepEqual(created.action, { path: 'guest', name: action })
    await assert.rejects(ow.rules.create({ name: rule, action, trigger }), (e) => e.statusCode === 409)
    await assert.rejects(
      ow.rules.create({ name: unique('r'), action: unique('missing'), trigger }),
      (e) => e.statusCode === 400
    )
    const listed = await ow.rules.list()
    const item = listed.find((r) => r.name === rule)
    assert.ok(item, 'the rule is listed')
    assert.equal(item.status, undefined)
    const t = await ow.triggers.get({ name: trigger })
    assert.equal(t.rules[`guest/${rule}`].status, 'active')

    const fired = await ow.triggers.invoke({ name: trigger, params: { b: 'fire', c: 3 } })
    assert.match(fired.activationId, /^[0-9a-f]{32}$/)
    const record = await eventually(() => ow.activations.get({ name: fired.activationId }))
    assert.equal(record.name, trigger)
    assert.equal(record.end, undefined)
    assert.deepEqual(record.response.result, { b: 'fire', c: 3 })
    const log = JSON.parse(record.logs[0])
    assert.deepEqual(
      { statusCode: log.statusCode, success: log.success, rule: log.rule, action: log.action },
      { statusCode: 0, success: true, rule: `guest/${rule}`, action: `guest/${action}` }
    )
    const run = await eventually(async () => {
      const a = await ow.activations.get({ name: log.activationId })
      return a.end ? a : undefined
    })
    assert.deepEqual(run.response.result, { a: 'trigger', b: 'fire', c: 3 })

    await ow.rules.disable({ name: rule })
    assert.equal((await ow.rules.get({ name: rule })).status, 'inactive')
    const idle = await ow.triggers.invoke({ name: trigger, params: {} })
    assert.ok(!idle || !idle.activationId, 'an inactive rule fires nothing')
    await ow.rules.enable({ name: rule })
    assert.equal((await ow.rules.get({ name: rule })).status, 'active')
  } finally {
    const deleted = await ow.rules.delete({ name: rule }).catch(() => undefined)
    if (deleted) assert.equal(deleted.status, 'inactive')
    await ow.triggers.delete({ name: trigger }).catch(() => {})
    await ow.actions.delete({ name: action }).catch(() => {})
  }
  await assert.rejects(ow.rules.get({ name: rule }), (e) => e.statusCode === 404)
})

test('enabling a rule whose trigger is gone answers 404', async () => {
  const trigger = unique('t')
  const action = unique('echo')
  const rule = unique('r')
  await ow.actions.create({ name: action, action: ECHO })
  await ow.triggers.create({ name: trigger })
  try {
    await ow.rules.create({ name: rule, action, trigger })
    await ow.triggers.delete({ name: trigger })
    assert.equal((await ow.rules.get({ name: rule })).status, 'inactive')
    await assert.rejects(
      ow.rules.enable({ name: rule }),
      (e) => e.statusCode === 404 && e.error.error === 'Only rules with existing triggers can be activated'
    )
  } finally {
    await ow.rules.delete({ name: rule }).catch(() => {})
    await ow.actions.delete({ name: action }).catch(() => {})
  }
})
