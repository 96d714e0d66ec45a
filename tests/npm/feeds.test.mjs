// Feeds through the official `openwhisk` npm client: feeds.create / get / update / delete
// invoke the built-in feed actions of /whisk.system with the lifecycle events, and an
// interval alarm fires its trigger's rule.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { client, eventually, unique } from './helpers.mjs'

const ow = client()
const ECHO = 'function main(params) { return params; }'
const FEED = '/whisk.system/alarms/interval'

test('the alarms package is a published package of feeds', async () => {
  const pkg = await ow.packages.get({ name: '/whisk.system/alarms' })
  assert.equal(pkg.publish, true)
  assert.deepEqual(pkg.feeds.map((f) => f.name).sort(), ['alarm', 'interval', 'once'])
})

test('feeds.create starts an interval alarm that fires a rule; feeds.delete stops it', async () => {
  const trigger = unique('tick')
  const action = unique('echo')
  const rule = unique('r')
  await ow.actions.create({ name: action, action: ECHO })
  await ow.triggers.create({ name: trigger, trigger: { annotations: [{ key: 'feed', value: FEED }] } })
  await ow.rules.create({ name: rule, action, trigger })
  try {
    const created = await ow.feeds.create({
      name: FEED,
      trigger,
      params: { seconds: 1, trigger_payload: { from: 'npm' } }
    })
    assert.equal(created.response.success, true)
    const read = await ow.feeds.get({ name: FEED, trigger })
    assert.equal(read.response.result.config.seconds, 1)
    assert.equal(read.response.result.status.active, true)
    const updated = await ow.feeds.update({ name: FEED, trigger, params: { seconds: 2 } })
    assert.equal(updated.response.success, true)

    const fired = await eventually(async () => {
      const list = await ow.activations.list({ name: action, docs: true })
      return list.find((a) => a.response.result.from === 'npm')
    })
    assert.ok(fired, 'the alarm fired the rule')

    const deleted = await ow.feeds.delete({ name: FEED, trigger })
    assert.equal(deleted.response.success, true)
    await assert.rejects(
      ow.feeds.get({ name: FEED, trigger }),
      (e) => e.statusCode === 502 && /has no alarms\/interval feed/.test(e.error.response.result.error)
    )
    await assert.rejects(
      ow.feeds.create({ name: FEED, trigger, params: { minutes: 0 } }),
      (e) => e.statusCode === 502 && /at least 1/.test(e.error.response.result.error)
    )
  } finally {
    await ow.rules.delete({ name: rule })
    await ow.triggers.delete({ name: trigger })
    await ow.actions.delete({ name: action })
  }
})
