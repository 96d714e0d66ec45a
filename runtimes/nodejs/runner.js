// edgewhisk Node.js action runner (node 20, no dependencies).
//
// Pipe protocol (docs/design/001-runner-protocol.md): one JSON request per line on stdin,
// one JSON reply per line on file descriptor 3. The process' own stdout/stderr belong to the
// action: they are its logs. After every run and after a failed init the runner writes the
// activation-end sentinel on both streams, unless the action printed nothing since the last
// sentinels: then it writes none and marks the reply `"quiet":true`. Statuses and bodies
// follow OpenWhisk's Node.js runtime (openwhisk-runtime-nodejs), so the invoker can treat them
// like `/init` and `/run`.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');

// OpenWhisk's activation-end marker. The invoker sends this instance's sentinel line (the
// marker, a space and a nonce) with the init request and accepts only that one, so an action
// printing the bare marker cannot end its log early. It is kept in this module's scope, which
// action code (loaded with `new Function` or `require`) does not see.
const MARKER = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
let SENTINEL = MARKER + '\n';
let SENTINEL_BYTES = Buffer.from(SENTINEL, 'utf8');
const REPLY_FD = 3;
const CONCURRENT = process.env.__OW_ALLOW_CONCURRENT === 'true';
// The runner's own configuration must not leak into the action's environment.
delete process.env.__OW_ALLOW_CONCURRENT;

// The action's environment. Node's own process.env writes through to the C environment with
// setenv(3), and glibc keeps every value ever set there: with a fresh activation id, deadline
// and transaction id on every run that leaked ~350 bytes per activation without bound and
// cost ~15 µs of CPU per run. So the runner gives the action a plain object with the same
// contents instead. Reads, writes (coerced to strings, as process.env does), deletes,
// enumeration and child processes (child_process defaults to process.env) behave as before;
// only native code calling getenv(3) does not see per-run values.
const envStore = Object.assign({}, process.env);
process.env = new Proxy(envStore, {
  set(target, key, value) {
    target[key] = String(value);
    return true;
  },
  defineProperty(target, key, desc) {
    target[key] = String(desc.value);
    return true;
  },
});

let action = null; // the entry function once initialised
let initAttempted = false;
let lastRunEnv = [];

// Writes all of `data` to `fd` (the pipes are blocking, but may have been made non-blocking).
function writeAll(fd, data) {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

// Replies go only to fd 3; the action cannot corrupt them with console.log.
function writeReply(text) {
  writeAll(REPLY_FD, text + '\n');
}

function reply(id, status, body) {
  writeReply(JSON.stringify({ id, status, body }));
}

// Takes the sentinel line of the (first) init request, if it is a well-formed one.
function takeSentinel(req) {
  const s = req.log_sentinel;
  if (typeof s === 'string' && s.startsWith(MARKER) && !/[\r\n]/.test(s)) {
    SENTINEL = s + '\n';
    SENTINEL_BYTES = Buffer.from(SENTINEL, 'utf8');
  }
}

// Whether anything may have been written to fd 1 or 2 since the last sentinels: through
// process.stdout or process.stderr (console.* included), or by a child process, which may
// inherit them (execSync passes its child's stderr through by default). Output written to the
// fds directly (fs.writeSync(1, …)) is not seen: it goes into the log of the next activation
// after which sentinels are written.
let printed = false;
function noting(fn) {
  return function (...args) {
    printed = true;
    return fn.apply(this, args);
  };
}
for (const stream of [process.stdout, process.stderr]) {
  stream.write = noting(stream.write);
}
// child_process is wrapped when the action first loads it (loading it here would add
// milliseconds to every runner start): asynchronous children all start in
// ChildProcess.prototype.spawn, the synchronous ones in the exported functions.
{
  const load = Module._load;
  let wrapped = false;
  Module._load = function (request, ...rest) {
    const m = load.call(this, request, ...rest);
    if (!wrapped && (request === 'child_process' || request === 'node:child_process')) {
      wrapped = true;
      m.ChildProcess.prototype.spawn = noting(m.ChildProcess.prototype.spawn);
      for (const name of ['spawnSync', 'execSync', 'execFileSync']) m[name] = noting(m[name]);
    }
    return m;
  };
}

// The sentinels must follow everything the action printed. process.stdout/stderr write to a
// pipe at once while it has room and queue the rest; with nothing queued the sentinels go to
// the fds directly, skipping the stream machinery (~8 µs per run), otherwise behind the queue.
// When nothing was printed since the last sentinels none are written, and false is returned:
// the reply then says `"quiet":true`, and the invoker does not wait for them.
function markers() {
  if (!printed) return false;
  const out = process.stdout;
  const err = process.stderr;
  if (out.writableLength === 0 && err.writableLength === 0) {
    writeAll(1, SENTINEL_BYTES);
    writeAll(2, SENTINEL_BYTES);
  } else {
    out.write(SENTINEL);
    err.write(SENTINEL);
  }
  printed = false;
  return true;
}

// The reply of a request after which markers() wrote nothing carries `"quiet":true` before its
// body (the body stays last, where the invoker looks for it in an oversized line).
function envelope(id, status, body, quiet) {
  return quiet ? { id, status, quiet: true, body } : { id, status, body };
}

function errorText(e) {
  return e && e.stack ? String(e.stack) : String(e);
}

// A JSON-safe copy of a rejection reason (what serialize-error gives the reference runtime).
function serializeError(e) {
  if (e instanceof Error) {
    const out = { name: e.name, message: e.message, stack: e.stack };
    for (const k of Object.keys(e)) out[k] = e[k];
    return out;
  }
  return e;
}

function lookupExport(exportsObj, main) {
  if (exportsObj && typeof exportsObj[main] === 'function') return exportsObj[main];
  if (typeof exportsObj === 'function' && main === 'main') return exportsObj;
  return undefined;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

function loadPlain(code, main) {
  const filename = path.join(process.cwd(), 'action.js');
  const mod = { exports: {} };
  const exportsObj = mod.exports;
  const localRequire = Module.createRequire(filename);
  const probe = IDENT.test(main)
    ? `\n;return (typeof ${main} === 'function') ? ${main} : undefined;`
    : '\n;return undefined;';
  // eslint-disable-next-line no-new-func
  const thunk = new Function('exports', 'require', 'module', '__filename', '__dirname', code + probe);
  const global = thunk(exportsObj, localRequire, mod, filename, process.cwd());
  return global || lookupExport(mod.exports, main) || lookupExport(exportsObj, main);
}

function loadDir(dir, main) {
  process.chdir(dir);
  let file;
  let fn = main;
  const dot = main.lastIndexOf('.');
  if (dot > 0) {
    file = path.join(dir, main.slice(0, dot));
    fn = main.slice(dot + 1);
  } else {
    const pkgPath = path.join(dir, 'package.json');
    if (fs.existsSync(pkgPath)) {
      const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
      file = path.join(dir, pkg.main || 'index.js');
    } else if (fs.existsSync(path.join(dir, 'index.js'))) {
      file = path.join(dir, 'index.js');
    } else {
      throw new Error('Zipped actions must contain either package.json or index.js at the root.');
    }
  }
  return lookupExport(require(file), fn);
}

function init(req) {
  const v = req.value || {};
  if (initAttempted) {
    reply(req.id, 403, { error: 'Cannot initialize the action more than once.' });
    return;
  }
  initAttempted = true;
  takeSentinel(req);
  const main = typeof v.main === 'string' && v.main !== '' ? v.main : undefined;
  const hasCode = typeof v.code === 'string' && v.code !== '';
  const hasDir = typeof v.code_dir === 'string' && v.code_dir !== '';
  if (!main || (!hasCode && !hasDir)) {
    // Not an attempt in OpenWhisk's sense: a later init may still bring the code.
    initAttempted = false;
    const quiet = !markers();
    const body = { error: 'Missing main/no code to execute.' };
    writeReply(JSON.stringify(envelope(req.id, 403, body, quiet)));
    return;
  }
  try {
    const env = v.env || {};
    for (const k of Object.keys(env)) {
      const val = env[k];
      process.env[k] = val !== null && typeof val === 'object' ? JSON.stringify(val) : String(val ?? '');
    }
    const fn = hasDir ? loadDir(v.code_dir, main) : loadPlain(v.code, main);
    if (typeof fn !== 'function') {
      throw new Error(`Action entrypoint '${main}' is not a function.`);
    }
    action = fn;
    reply(req.id, 200, { OK: true });
  } catch (e) {
    console.error('Error during initialization:', e);
    const quiet = !markers();
    const body = { error: 'Initialization has failed due to: ' + errorText(e) };
    writeReply(JSON.stringify(envelope(req.id, 502, body, quiet)));
  }
}

function setRunEnv(req) {
  for (const k of lastRunEnv) delete envStore[k];
  lastRunEnv = [];
  for (const k of Object.keys(req)) {
    if (k === 'value' || k === 'id' || k === 'op') continue;
    const val = req[k];
    if (typeof val !== 'string') continue;
    const name = '__OW_' + k.toUpperCase();
    envStore[name] = val;
    lastRunEnv.push(name);
  }
}

function finish(id, result) {
  let status = 200;
  let body = result;
  if (result === undefined) {
    body = {};
  } else if (result === null || typeof result !== 'object') {
    console.error(`Result must be of type object but has type "${typeof result}":`, result);
    status = 502;
    body = { error: 'The action did not return a dictionary.' };
  }
  let text;
  try {
    text = JSON.stringify(body);
  } catch (e) {
    console.error(e);
    status = 502;
    text = JSON.stringify({ error: 'An error has occurred: ' + e });
  }
  if (text === undefined) {
    // A toJSON that returns undefined: not a JSON response.
    status = 502;
    text = JSON.stringify({ error: 'The action did not produce a valid JSON response.' });
  }
  // The body is serialised once, on its own, and spliced into the envelope.
  const quiet = !markers();
  const head = `{"id":${JSON.stringify(id ?? null)},"status":${status},`;
  writeReply(`${head}${quiet ? '"quiet":true,' : ''}"body":${text}}`);
}

function failed(id, e) {
  console.error(e);
  const quiet = !markers();
  writeReply(JSON.stringify(envelope(id, 502, { error: 'An error has occurred: ' + e }, quiet)));
}

// Returns a promise when the action is asynchronous, so the serial queue can wait for it.
function run(req) {
  if (!action) {
    reply(req.id, 403, { error: 'Cannot run the action before it is initialized.' });
    return undefined;
  }
  setRunEnv(req);
  const id = req.id;
  let result;
  try {
    result = action(req.value === undefined || req.value === null ? {} : req.value);
  } catch (e) {
    failed(id, e);
    return undefined;
  }
  if (result && typeof result.then === 'function') {
    return Promise.resolve(result).then(
      (r) => finish(id, r),
      (e) => finish(id, { error: e ? serializeError(e) : {} }),
    );
  }
  finish(id, result);
  return undefined;
}

// Without concurrency requests are handled one at a time, in arrival order.
const queue = [];
let busy = false;

function handle(req) {
  if (req.op === 'init') return init(req);
  if (req.op === 'run') return run(req);
  reply(req.id === undefined ? null : req.id, 500, { error: 'Bad request.' });
  return undefined;
}

function pump() {
  while (!busy && queue.length > 0) {
    const p = handle(queue.shift());
    if (p) {
      busy = true;
      p.then(() => {
        busy = false;
        pump();
      });
    }
  }
}

function onLine(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    reply(null, 500, { error: 'Bad request.' });
    return;
  }
  if (req === null || typeof req !== 'object') {
    reply(null, 500, { error: 'Bad request.' });
    return;
  }
  if (CONCURRENT) {
    handle(req);
  } else {
    queue.push(req);
    pump();
  }
}

let pending = [];
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  let start = 0;
  let nl;
  while ((nl = chunk.indexOf('\n', start)) !== -1) {
    pending.push(chunk.slice(start, nl));
    const line = pending.length === 1 ? pending[0] : pending.join('');
    pending = [];
    start = nl + 1;
    if (line.length > 0) onLine(line);
  }
  if (start < chunk.length) pending.push(chunk.slice(start));
});
// The invoker closed our stdin: the instance is being removed.
process.stdin.on('end', () => process.exit(0));
