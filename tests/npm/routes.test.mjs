// API gateway routes through the official `openwhisk` npm client: routes.create, list, get
// and delete (the route management endpoints `whisk.system/apimgmt/*.http`), and a fetch of
// the route it creates, with a path parameter.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { client, unique } from './helpers.mjs'

const ow = client()
const BOOK = `function main(p) {
  return {body: {id: p.id || null, path: p.__ow_path, method: p.__ow_method}};
}`

test('routes.create, list, get and delete, and the route answers', async () => {
  const action = unique('book')
  const basepath = `/${unique('lib')}`
  await ow.actions.create({
    name: action,
    action: BOOK,
    annotations: { 'web-export': true }
  })
  try {
    const created = await ow.routes.create({
      basepath,
      relpath: '/books/{id}',
      operation: 'GET',
      action,
      responsetype: 'http'
    })
    assert.match(created.gwApiUrl, new RegExp(`/api/[0-9a-f-]{36}${basepath}$`))
    const op = created.apidoc.paths['/books/{id}'].get
    assert.equal(op['x-openwhisk'].action, action)
    assert.equal(op['x-openwhisk'].namespace, 'guest')

    await ow.routes.create({ basepath, relpath: '/books', operation: 'post', action })

    const listed = await ow.routes.list()
    const api = listed.apis.find((a) => a.value.apidoc.basePath === basepath)
    assert.ok(api, 'the new API is listed')
    assert.deepEqual(Object.keys(api.value.apidoc.paths).sort(), ['/books', '/books/{id}'])

    const got = await ow.routes.get({ basepath })
    assert.equal(got.apis.length, 1)
    assert.equal(got.apis[0].value.gwApiUrl, created.gwApiUrl)

    const res = await fetch(`${created.gwApiUrl}/books/42`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
    assert.deepEqual(await res.json(), { id: '42', path: '/books/42', method: 'get' })

    await ow.routes.delete({ basepath, relpath: '/books', operation: 'POST' })
    const after = await ow.routes.get({ basepath })
    assert.deepEqual(Object.keys(after.apis[0].value.apidoc.paths), ['/books/{id}'])

    await ow.routes.delete({ basepath })
    assert.equal((await ow.routes.get({ basepath })).apis.length, 0)
    assert.equal((await fetch(`${created.gwApiUrl}/books/42`)).status, 404)
    await assert.rejects(ow.routes.delete({ basepath }), (e) => e.statusCode === 404)
  } finally {
    await ow.routes.delete({ basepath }).catch(() => {})
    await ow.actions.delete({ name: action })
  }
})
