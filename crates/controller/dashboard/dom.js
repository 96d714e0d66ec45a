// DOM helpers: elements are built from properties and children, never from HTML strings, so
// nothing a server or a user wrote is ever parsed as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/** Appends children: nodes, strings (as text), arrays of them; null and false are skipped. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: `h('a', {href: '#/x'}, 'text')`. */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element. */
export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

/** Removes every child of `el`, then appends `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Pretty JSON for a `<pre>`. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A table in a horizontally scrolling region (narrow screens). */
export function table(caption, columns, rows) {
  return h('div', {class: 'scroll', role: 'region', 'aria-label': caption, tabindex: '0'},
    h('table', {},
      h('caption', {class: 'sr-only'}, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {scope: 'col'}, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((cell) => h('td', {}, cell)))))));
}

/** `12 ms`, `1.25 s`. */
export function ms(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** A local date and time from epoch milliseconds. */
export function when(epochMs) {
  return epochMs ? new Date(epochMs).toLocaleString() : '–';
}
