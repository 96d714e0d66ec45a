// The REST API of the same origin, called with the signed-in namespace key (Basic auth). The
// key lives in sessionStorage only: it is gone when the tab closes, and never in a cookie, so
// the browser sends it nowhere on its own.

const KEY = 'edgewhisk.key';
const NAMESPACE = 'edgewhisk.namespace';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get namespace() { return sessionStorage.getItem(NAMESPACE) || ''; },
  signIn(key, namespace) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(NAMESPACE, namespace);
  },
  signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(NAMESPACE);
  },
};

/** A failed API call: its status and OpenWhisk error message. */
export class ApiError extends Error {
  constructor(reply) {
    const why = reply.body && reply.body.error ? reply.body.error : reply.text || 'no answer';
    super(`${reply.status}: ${why}`);
    this.reply = reply;
  }
}

/**
 * One request: `{status, ok, body (parsed JSON or null), text}`. `credentials: 'omit'` keeps
 * the browser from offering its own sign-in prompt on a 401.
 */
export async function call(method, path, {body, key = session.key, accept = 'application/json'} = {}) {
  const headers = {Accept: accept};
  if (key) headers.Authorization = `Basic ${btoa(key)}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return {status: res.status, ok: res.ok, body: parsed, text};
}

/** `/api/v1/namespaces/_/` + `rest`, each path segment of `name` encoded. */
export function nsPath(collection, name, query) {
  let p = `/api/v1/namespaces/_/${collection}`;
  if (name) p += '/' + name.split('/').map(encodeURIComponent).join('/');
  if (query) p += '?' + new URLSearchParams(query).toString();
  return p;
}

/** GET of a namespace path; throws [`ApiError`] unless 2xx. */
export async function get(collection, name, query) {
  const r = await call('GET', nsPath(collection, name, query));
  if (!r.ok) throw new ApiError(r);
  return r.body;
}

/** The name of an entity relative to the namespace: `pkg/name` or `name`. */
export function relName(entity) {
  const pkg = String(entity.namespace || '').split('/')[1];
  return pkg ? `${pkg}/${entity.name}` : entity.name;
}

/** The value of annotation `key`, or undefined. */
export function annotation(entity, key) {
  const a = (entity.annotations || []).find((x) => x.key === key);
  return a ? a.value : undefined;
}

/** Facts of an activation record for display. */
export function facts(record) {
  const response = record.response || {};
  const failed = response.success === false || Boolean(response.status && response.status !== 'success');
  const initTime = annotation(record, 'initTime');
  const path = annotation(record, 'path');
  const action = typeof path === 'string' && path.includes('/')
    ? path.split('/').slice(1).join('/') : record.name;
  return {
    failed,
    status: failed ? `failed (${response.status || 'error'})` : 'success',
    duration: record.duration,
    cold: initTime !== undefined,
    initTime,
    action,
    result: response.result,
    logs: record.logs || [],
  };
}
