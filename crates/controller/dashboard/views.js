// The screens. Each view renders into `main` and may return a function that stops what it
// started (polling) when the user leaves it.

import {call, get, nsPath, relName, annotation, facts, session, ApiError} from './api.js';
import {h, replace, pretty, table, ms, when} from './dom.js';
import {codeEditor} from './editor.js';
import {latencyChart, errorRateChart, percentile} from './charts.js';

const POLL_MS = 2000;
const LIVE_MAX = 100;

function heading(text) {
  return h('h1', {tabindex: '-1', id: 'view-title'}, text);
}

function failure(err) {
  return h('p', {class: 'error', role: 'alert'}, err instanceof ApiError ? err.message : String(err));
}

function link(href, text) {
  return h('a', {href}, text);
}

function hrefOf(collection, name) {
  return `#/${collection}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

// ---- sign in -------------------------------------------------------------------------------

/** The sign-in form; `done` runs once the key was accepted. */
export function signIn(main, done) {
  const error = h('p', {class: 'error', role: 'alert', id: 'signin-error'});
  const input = h('input', {
    id: 'key', name: 'key', type: 'password', required: true, autocomplete: 'off',
    spellcheck: 'false', placeholder: 'uuid:key', 'aria-describedby': 'key-help',
  });
  const form = h('form', {id: 'signin', class: 'card narrow'},
    heading('Sign in'),
    h('div', {class: 'field'},
      h('label', {for: 'key'}, 'Namespace key'),
      input,
      h('p', {id: 'key-help', class: 'help'},
        'The key as uuid:key (wsk property get --auth). It is kept in this tab\'s session ',
        'storage only and sent to this server alone.')),
    h('button', {type: 'submit', class: 'primary'}, 'Sign in'),
    error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!/^[^:]+:.+$/.test(key)) {
      error.textContent = 'A key has the form uuid:key.';
      return;
    }
    error.textContent = '';
    try {
      const r = await call('GET', '/api/v1/namespaces', {key});
      if (!r.ok) {
        error.textContent = r.status === 401 ? 'The key was not accepted.' : new ApiError(r).message;
        return;
      }
      session.signIn(key, (r.body || [])[0] || '');
      done();
    } catch (err) {
      error.textContent = `The server could not be reached: ${err}`;
    }
  });
  replace(main, form);
  input.focus();
}

// ---- entity lists and details --------------------------------------------------------------

const COLLECTIONS = {
  actions: {
    title: 'Actions',
    columns: ['Name', 'Kind', 'Version', 'Web'],
    row: (e) => [link(hrefOf('actions', relName(e)), relName(e)), annotation(e, 'exec') || '–',
      e.version, annotation(e, 'web-export') ? 'yes' : 'no'],
  },
  packages: {
    title: 'Packages',
    columns: ['Name', 'Binding', 'Shared', 'Version'],
    row: (e) => [link(hrefOf('packages', e.name), e.name),
      e.binding && e.binding.name ? `${e.binding.namespace}/${e.binding.name}` : '–',
      e.publish ? 'yes' : 'no', e.version],
  },
  triggers: {
    title: 'Triggers',
    columns: ['Name', 'Feed', 'Version'],
    row: (e) => [link(hrefOf('triggers', e.name), e.name), annotation(e, 'feed') || '–', e.version],
  },
  rules: {
    title: 'Rules',
    columns: ['Name', 'Version'],
    row: (e) => [link(hrefOf('rules', e.name), e.name), e.version],
  },
};

/** The list of one collection. */
export async function list(main, collection) {
  const c = COLLECTIONS[collection];
  const actions = collection === 'actions'
    ? h('p', {class: 'actions'}, h('a', {href: '#/new', class: 'button primary', id: 'new-action'}, 'New action'))
    : null;
  replace(main, heading(c.title), actions, h('p', {}, 'Loading…'));
  try {
    const items = await get(collection, null, {limit: 200});
    const body = items.length
      ? table(c.title, c.columns, items.map(c.row))
      : h('p', {class: 'empty'}, `No ${c.title.toLowerCase()} in this namespace.`);
    replace(main, heading(c.title), actions, body);
  } catch (err) {
    replace(main, heading(c.title), failure(err));
  }
}

/** Facts of a package, trigger or rule, then its whole record. */
export async function detail(main, collection, name) {
  const title = `${COLLECTIONS[collection].title.replace(/s$/, '')} ${name}`;
  replace(main, heading(title), h('p', {}, 'Loading…'));
  try {
    const e = await get(collection, name);
    const rows = [['Namespace', e.namespace], ['Version', e.version]];
    if (collection === 'rules') {
      rows.push(['Status', e.status], ['Trigger', e.trigger && e.trigger.name], ['Action', e.action && e.action.name]);
    }
    if (collection === 'packages') {
      const acts = (e.actions || []).map((a) => link(hrefOf('actions', `${name}/${a.name}`), a.name));
      rows.push(['Actions', acts.length ? acts.flatMap((a, i) => (i ? [', ', a] : [a])) : '–']);
    }
    if (collection === 'triggers') {
      rows.push(['Rules', Object.keys(e.rules || {}).join(', ') || '–']);
    }
    replace(main, heading(title),
      h('dl', {class: 'facts'}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '–')])),
      h('h2', {}, 'Record'), h('pre', {class: 'json'}, pretty(e)),
      h('p', {}, link(`#/${collection}`, `Back to ${collection}`)));
  } catch (err) {
    replace(main, heading(title), failure(err));
  }
}

// ---- action editor and invoke --------------------------------------------------------------

let kindsCache = null;

/** The kinds of `GET /` (deployment JSON): `[{kind, default}]`. */
async function kinds() {
  if (!kindsCache) {
    const r = await call('GET', '/', {key: null});
    kindsCache = Object.values((r.body && r.body.runtimes) || {}).flat()
      .map((rt) => ({kind: rt.kind, default: rt.default}));
  }
  return kindsCache;
}

const SAMPLE = "function main(params) {\n  const name = params.name || 'World';\n  console.log('greeting', name);\n  return {payload: `Hello, ${name}!`};\n}\n";

/** The editor of a new action (`name` null) or an existing one, with invoke below it. */
export async function action(main, name, navigate) {
  const title = name ? `Action ${name}` : 'New action';
  replace(main, heading(title), h('p', {}, 'Loading…'));
  let existing = null;
  let available;
  try {
    available = await kinds();
    if (name) existing = await get('actions', name);
  } catch (err) {
    replace(main, heading(title), failure(err));
    return;
  }
  const exec = existing ? existing.exec || {} : {};
  const editable = !existing || (typeof exec.code === 'string' && !exec.binary);
  const current = exec.kind || (available.find((k) => k.default && k.kind.startsWith('nodejs')) || available[0] || {}).kind;
  const kindSelect = h('select', {id: 'action-kind', name: 'kind'},
    available.map((k) => h('option', {value: k.kind, selected: k.kind === current}, k.kind)));
  if (current && !available.some((k) => k.kind === current)) {
    kindSelect.append(h('option', {value: current, selected: true}, current));
  }
  const nameInput = name ? null : h('input', {
    id: 'action-name', name: 'name', required: true,
    autocomplete: 'off', 'aria-describedby': 'action-name-help',
  });
  const editor = codeEditor({id: 'action-code', label: 'Code', value: editable ? (exec.code ?? SAMPLE) : ''});
  const saveStatus = h('p', {id: 'save-status', role: 'status'});
  const form = h('form', {id: 'action-form', class: 'card'},
    nameInput && h('div', {class: 'field'},
      h('label', {for: 'action-name'}, 'Name'), nameInput,
      h('p', {id: 'action-name-help', class: 'help'}, 'A name, or package/name for an action in a package.')),
    h('div', {class: 'field'}, h('label', {for: 'action-kind'}, 'Kind'), kindSelect),
    editable ? editor.root : h('p', {}, `This action's code is not text (${exec.kind}); it is shown as a record below.`),
    editable && h('button', {type: 'submit', class: 'primary', id: 'save-action'}, name ? 'Save' : 'Create'),
    saveStatus);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const target = name || nameInput.value.trim();
    const body = {exec: {kind: kindSelect.value, code: editor.textarea.value}};
    if (existing) {
      body.parameters = existing.parameters;
      // `exec` is the server's own annotation, recomputed from the kind.
      body.annotations = (existing.annotations || []).filter((a) => a.key !== 'exec');
      body.limits = existing.limits;
    }
    saveStatus.textContent = 'Saving…';
    const r = await call('PUT', nsPath('actions', target, {overwrite: 'true'}), {body});
    if (!r.ok) {
      saveStatus.textContent = `Not saved: ${new ApiError(r).message}`;
      return;
    }
    saveStatus.textContent = `Saved, version ${r.body.version}.`;
    if (!name) navigate(hrefOf('actions', target));
  });
  replace(main, heading(title), h('div', {class: 'split'}, form, name ? invokePanel(name) : null),
    existing && !editable ? [h('h2', {}, 'Record'), h('pre', {class: 'json'}, pretty(existing))] : null,
    name ? h('p', {}, link(`#/activations?name=${encodeURIComponent(name)}`, `Activations of ${name}`)) : null);
}

/** Parameters as JSON, an Invoke button, and the activation it produced. */
function invokePanel(name) {
  const params = h('textarea', {id: 'invoke-params', class: 'code small', rows: '4', spellcheck: 'false', 'aria-describedby': 'invoke-params-help'});
  params.value = '{}';
  const out = h('div', {id: 'invoke-result', 'aria-live': 'polite'});
  const form = h('form', {id: 'invoke-form', class: 'card'},
    h('h2', {}, 'Invoke'),
    h('div', {class: 'field'},
      h('label', {for: 'invoke-params'}, 'Parameters (JSON object)'),
      params,
      h('p', {id: 'invoke-params-help', class: 'help'}, 'Sent as the body of a blocking invoke.')),
    h('button', {type: 'submit', class: 'primary', id: 'invoke'}, 'Invoke'),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let body;
    try {
      body = JSON.parse(params.value || '{}');
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    } catch (err) {
      replace(out, h('p', {class: 'error', role: 'alert'}, `The parameters are not a JSON object: ${err.message}`));
      return;
    }
    replace(out, h('p', {}, 'Running…'));
    const r = await call('POST', nsPath('actions', name, {blocking: 'true'}), {body});
    if (r.body && r.body.activationId && r.body.response) {
      replace(out, activationDetail(r.body, true));
      // A blocking answer may come before the logs are collected: the stored record has them.
      if (!(r.body.logs || []).length) {
        const stored = await storedRecord(r.body.activationId);
        if (stored) replace(out, activationDetail(stored, true));
      }
    } else if (r.status === 202 && r.body) {
      replace(out, h('p', {}, `Still running: activation ${r.body.activationId}. See Activations.`));
    } else {
      replace(out, h('p', {class: 'error', role: 'alert'}, new ApiError(r).message));
    }
  });
  return form;
}

/** The stored record of activation `id`, waited for up to about 3 seconds; null if none. */
async function storedRecord(id) {
  for (let i = 0; i < 10; i++) {
    const r = await call('GET', nsPath('activations', id));
    if (r.ok && r.body) return r.body;
    await new Promise((done) => setTimeout(done, 300));
  }
  return null;
}

function badge(f) {
  return h('span', {class: f.failed ? 'badge failed' : 'badge ok'}, f.status);
}

/** Result, logs and timings of one activation record. */
function activationDetail(record, withSummary) {
  const f = facts(record);
  return h('div', {class: 'activation-detail', 'data-status': f.failed ? 'failed' : 'success'},
    withSummary ? h('p', {}, badge(f), ' ', record.activationId) : null,
    h('dl', {class: 'facts'},
      h('dt', {}, 'Activation'), h('dd', {}, record.activationId),
      h('dt', {}, 'Started'), h('dd', {}, when(record.start)),
      h('dt', {}, 'Duration'), h('dd', {}, ms(f.duration)),
      h('dt', {}, 'Start'), h('dd', {}, f.cold ? `cold (init ${ms(f.initTime)})` : 'warm')),
    h('h3', {}, 'Result'), h('pre', {class: 'json result'}, pretty(f.result ?? null)),
    h('h3', {}, 'Logs'), h('pre', {class: 'logs'}, f.logs.length ? f.logs.join('\n') : '(no logs)'));
}

// ---- activations, live -------------------------------------------------------------------

/** The live list of activations; returns the function that stops its polling. */
export function activations(main, query) {
  const nameInput = h('input', {id: 'filter-name', name: 'name', list: 'action-names', autocomplete: 'off', value: query.get('name') || ''});
  const names = h('datalist', {id: 'action-names'});
  const statusSelect = h('select', {id: 'filter-status', name: 'status'},
    [['all', 'All'], ['success', 'Success'], ['failed', 'Failed']].map(([v, t]) =>
      h('option', {value: v, selected: (query.get('status') || 'all') === v}, t)));
  const pause = h('button', {type: 'button', id: 'pause', 'aria-pressed': 'false'}, 'Pause live updates');
  const state = h('p', {id: 'live-state', class: 'help'});
  const listEl = h('ol', {id: 'activation-list', class: 'live', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Activations, newest first'});
  const form = h('form', {id: 'activation-filter', class: 'filters', role: 'search', 'aria-label': 'Filter activations'},
    h('div', {class: 'field'}, h('label', {for: 'filter-name'}, 'Action'), nameInput, names),
    h('div', {class: 'field'}, h('label', {for: 'filter-status'}, 'Status'), statusSelect),
    h('button', {type: 'submit'}, 'Apply'), pause);
  replace(main, heading('Activations'), form, state, listEl);

  const shown = new Map();
  let timer = null;
  let paused = false;
  let stopped = false;
  let generation = 0;

  const matches = (f) => {
    const s = statusSelect.value;
    return s === 'all' || (s === 'failed') === f.failed;
  };
  const item = (record) => {
    const f = facts(record);
    return h('li', {class: 'activation', 'data-id': record.activationId, 'data-status': f.failed ? 'failed' : 'success', 'data-action': f.action},
      h('details', {},
        h('summary', {},
          h('span', {class: 'name'}, f.action), ' ', badge(f), ' ',
          h('span', {class: 'meta'}, `${ms(f.duration)} · ${f.cold ? 'cold' : 'warm'} · ${when(record.start)}`)),
        activationDetail(record, false)));
  };
  const poll = async () => {
    const mine = generation;
    const q = {limit: 50, docs: 'true'};
    if (nameInput.value.trim()) q.name = nameInput.value.trim();
    try {
      const records = await get('activations', null, q);
      if (stopped || mine !== generation) return;
      const fresh = records.filter((r) => !shown.has(r.activationId) && matches(facts(r)));
      // Oldest first, each inserted at the top, so the list stays newest first.
      for (const r of fresh.reverse()) {
        const li = item(r);
        shown.set(r.activationId, li);
        listEl.prepend(li);
      }
      while (listEl.children.length > LIVE_MAX) {
        const last = listEl.lastElementChild;
        shown.delete(last.dataset.id);
        last.remove();
      }
      state.textContent = `${listEl.children.length} shown · updated ${new Date().toLocaleTimeString()}${paused ? ' · paused' : ''}`;
      if (!listEl.children.length) state.textContent = 'No activations match yet; the list updates every 2 seconds.';
    } catch (err) {
      state.textContent = `Update failed: ${err.message}`;
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    if (stopped || paused) return;
    timer = setTimeout(async () => { await poll(); schedule(); }, document.hidden ? POLL_MS * 5 : POLL_MS);
  };
  const restart = () => {
    generation += 1;
    shown.clear();
    listEl.replaceChildren();
    poll().then(schedule);
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); restart(); });
  statusSelect.addEventListener('change', restart);
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume live updates' : 'Pause live updates';
    if (!paused) poll().then(schedule);
  });
  get('actions', null, {limit: 200}).then((items) => {
    replace(names, items.map((a) => h('option', {value: relName(a)})));
  }).catch(() => {});
  restart();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- charts ---------------------------------------------------------------------------------

/** Latency and error rate per action from the newest stored activation records. */
export async function charts(main) {
  replace(main, heading('Charts'), h('p', {}, 'Loading activation records…'));
  const records = [];
  try {
    for (let skip = 0; skip < 600; skip += 200) {
      const page = await get('activations', null, {limit: 200, skip, docs: 'true'});
      records.push(...page);
      if (page.length < 200) break;
    }
  } catch (err) {
    replace(main, heading('Charts'), failure(err));
    return;
  }
  if (!records.length) {
    replace(main, heading('Charts'), h('p', {class: 'empty'}, 'No activation records yet: invoke an action first.'));
    return;
  }
  const byAction = new Map();
  for (const r of records) {
    const f = facts(r);
    if (!byAction.has(f.action)) byAction.set(f.action, []);
    byAction.get(f.action).push({start: r.start, y: f.duration || 0, failed: f.failed, cold: f.cold});
  }
  const actions = [...byAction.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, 12);
  const rows = actions.map(([name, pts]) => {
    const d = pts.map((p) => p.y);
    const errors = pts.filter((p) => p.failed).length;
    return {name, pts, count: pts.length, p50: percentile(d, 50), p95: percentile(d, 95), rate: (100 * errors) / pts.length};
  });
  replace(main, heading('Charts'),
    h('p', {class: 'help'}, `From the newest ${records.length} activation records of this namespace. Circles are successful activations (filled: cold start), crosses failed ones.`),
    table('Latency and errors per action', ['Action', 'Activations', 'p50', 'p95', 'Errors'],
      rows.map((r) => [r.name, String(r.count), ms(r.p50), ms(r.p95), `${r.rate.toFixed(1)}%`])),
    h('section', {class: 'card', 'aria-labelledby': 'errors-title'},
      h('h2', {id: 'errors-title'}, 'Error rate per action'),
      errorRateChart('Error rate per action, percent', rows.map((r) => ({label: r.name, rate: r.rate})))),
    rows.map((r, i) => h('section', {class: 'card', 'aria-labelledby': `latency-${i}`},
      h('h2', {id: `latency-${i}`}, `Latency of ${r.name}`),
      latencyChart(`Duration of each activation of ${r.name}, milliseconds, oldest to newest`,
        [...r.pts].sort((a, b) => a.start - b.start)))));
}

// ---- pool -------------------------------------------------------------------------------------

/** Sums of the samples of `metric` in Prometheus text, by the value of `label` ('' without). */
export function metricSums(text, metric, label) {
  const sums = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/);
    if (!m || m[1] !== metric) continue;
    const labels = Object.fromEntries([...(m[3] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const k = label ? labels[label] || '' : '';
    sums[k] = (sums[k] || 0) + Number(m[4]);
  }
  return sums;
}

const POOL_STATES = [
  ['prewarm', 'Prewarmed', 'Started stem cells waiting for a first action'],
  ['prewarm_starting', 'Prewarm starting', 'Stem cells being started'],
  ['warming', 'Warming', 'Instances in a cold start (/init)'],
  ['busy', 'Busy', 'Instances running an activation'],
  ['idle', 'Warm idle', 'Initialised instances kept for reuse; paused after a grace period'],
];

/** The instance pool from `GET /metrics` and the invokers from `GET /invokers`. */
export function pool(main) {
  let timer = null;
  let stopped = false;
  const render = async () => {
    try {
      const [m, inv] = await Promise.all([
        call('GET', '/metrics', {key: null, accept: 'text/plain'}),
        call('GET', '/invokers', {key: null}),
      ]);
      if (stopped) return;
      const states = metricSums(m.text, 'edgewhisk_pool_instances', 'state');
      const queue = metricSums(m.text, 'edgewhisk_pool_queue_length', '')[''];
      const memory = metricSums(m.text, 'edgewhisk_runner_memory_bytes', '')[''];
      const procs = metricSums(m.text, 'edgewhisk_runner_processes', '')[''];
      const cards = [
        ...POOL_STATES.map(([k, t, d]) => [t, states[k] ?? 0, d, k]),
        ['Queued', queue ?? 0, 'Activations waiting for an instance or memory', 'queue'],
        ['Runner memory', memory === undefined ? '–' : `${(memory / 1048576).toFixed(1)} MiB`, 'Resident memory of the runner processes', 'memory'],
        ['Runner processes', procs ?? 0, 'Processes counted in the runner memory', 'processes'],
      ];
      replace(main, heading('Instance pool'),
        h('p', {class: 'help'}, 'The pool is shared by every namespace of this server (GET /metrics); updated every 5 seconds.'),
        h('ul', {class: 'cards', id: 'pool-cards'}, cards.map(([t, v, d, k]) =>
          h('li', {class: 'stat', 'data-state': k}, h('span', {class: 'stat-value'}, String(v)), h('span', {class: 'stat-label'}, t), h('span', {class: 'help'}, d)))),
        h('h2', {}, 'Invokers'),
        table('Invokers', ['Invoker', 'Health'], Object.entries(inv.body || {}).map(([k, v]) => [k, v])));
    } catch (err) {
      if (!stopped) replace(main, heading('Instance pool'), failure(err));
    }
    if (!stopped) timer = setTimeout(render, 5000);
  };
  replace(main, heading('Instance pool'), h('p', {}, 'Loading…'));
  render();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- bench ------------------------------------------------------------------------------------

/** Results of `edgewhisk bench --out DIR`, read from JSON files the user picks. */
export function bench(main) {
  const out = h('div', {id: 'bench-results'}, h('p', {class: 'empty'}, 'No bench results loaded.'));
  const input = h('input', {id: 'bench-files', type: 'file', multiple: true, accept: '.json,application/json', 'aria-describedby': 'bench-help'});
  input.addEventListener('change', async () => {
    const parts = [];
    for (const file of input.files) {
      try {
        parts.push(benchTable(JSON.parse(await file.text()), file.name));
      } catch (err) {
        parts.push(h('p', {class: 'error', role: 'alert'}, `${file.name}: ${err.message}`));
      }
    }
    replace(out, parts.length ? parts : h('p', {class: 'empty'}, 'No bench results loaded.'));
  });
  replace(main, heading('Bench results'),
    h('div', {class: 'field card'},
      h('label', {for: 'bench-files'}, 'Result files'),
      input,
      h('p', {id: 'bench-help', class: 'help'},
        'The .json files that edgewhisk bench writes with --out DIR, one per experiment. They are read in this browser; nothing is uploaded.')),
    out);
}

/** One experiment's JSON (`{experiment, machine, settings, rows}`) as a table. */
export function benchTable(doc, file) {
  if (!doc || !Array.isArray(doc.rows)) throw new Error('not an edgewhisk bench result');
  const columns = [...new Set(doc.rows.flatMap((r) => Object.keys(r)))];
  const machine = doc.machine || {};
  const cell = (v) => (typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return h('section', {class: 'card'},
    h('h2', {}, doc.experiment || file),
    h('p', {class: 'help'}, [machine.cpu_model || machine.cpu, machine.cores && `${machine.cores} cores`, machine.kernel, machine.arch].filter(Boolean).join(' · ') || file),
    table(doc.experiment || file, columns, doc.rows.map((r) => columns.map((c) => cell(r[c])))));
}
