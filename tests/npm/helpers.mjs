// Shared setup for the compatibility tests: the client under test, pointed at EW_APIHOST.
import openwhisk from 'openwhisk'

/** The well-known guest key (namespace `guest`) that edgewhisk provisions on first start. */
export const GUEST =
  '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP'

/** The hello action from the seed study (`wsk action create hello hello.js`). */
export const HELLO = `/**
 * Hello world as an OpenWhisk action.
 */
function main(params) {
  var name = params.name || 'World';
  return {payload: 'Hello, ' + name + '!'};
}
`

export function apihost () {
  const host = process.env.EW_APIHOST
  if (!host) {
    throw new Error('EW_APIHOST is not set: point it at a running edgewhisk, e.g. http://127.0.0.1:3233')
  }
  return host
}

/** A client exactly as an application would build it. */
export function client () {
  return openwhisk({ apihost: apihost(), api_key: GUEST, ignore_certs: true })
}

/** A name unique to this run, so the suite can also target a long-lived server. */
export function unique (prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`
}

/** Waits until `fn` resolves to something truthy; rejects with the last error after `ms`. */
export async function eventually (fn, ms = 20000) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
      last = new Error('condition still false')
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) throw last
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** The OpenWhisk activation-log line format: 30-char RFC 3339 timestamp, stream, text. */
export const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\s+(stdout|stderr): /
