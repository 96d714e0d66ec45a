// The code editor: a monospace textarea with a line-number gutter. Tab indents (two spaces, or
// every selected line), Shift+Tab outdents; Escape then Tab leaves the editor, so keyboard
// users are never trapped in it.

import {h} from './dom.js';

const INDENT = '  ';

/** `{root, textarea}`: the editor labelled by `label`, holding `value`. */
export function codeEditor({id, label, value = ''}) {
  const gutter = h('pre', {class: 'gutter', 'aria-hidden': 'true'});
  const textarea = h('textarea', {
    id,
    class: 'code',
    spellcheck: 'false',
    autocapitalize: 'off',
    autocomplete: 'off',
    wrap: 'off',
    rows: '16',
    'aria-describedby': `${id}-help`,
  });
  textarea.value = value;
  const lines = () => {
    const n = textarea.value.split('\n').length;
    gutter.textContent = Array.from({length: n}, (_, i) => String(i + 1)).join('\n');
    gutter.scrollTop = textarea.scrollTop;
  };
  let escaped = false;
  textarea.addEventListener('input', lines);
  textarea.addEventListener('scroll', () => { gutter.scrollTop = textarea.scrollTop; });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { escaped = true; return; }
    if (e.key === 'Tab' && !escaped && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      indent(textarea, e.shiftKey);
      lines();
    }
    if (!['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) escaped = false;
  });
  lines();
  const root = h('div', {class: 'field'},
    h('label', {for: id}, label),
    h('div', {class: 'editor'}, gutter, textarea),
    h('p', {id: `${id}-help`, class: 'help'},
      'Tab indents, Shift+Tab outdents; press Escape, then Tab, to move on.'));
  return {root, textarea};
}

/** Indents (or outdents) the selected lines; a plain caret gets two spaces. */
function indent(ta, outdent) {
  const {selectionStart: start, selectionEnd: end, value} = ta;
  if (!outdent && start === end) {
    ta.setRangeText(INDENT, start, end, 'end');
    return;
  }
  const from = value.lastIndexOf('\n', start - 1) + 1;
  const block = value.slice(from, end);
  const changed = block
    .split('\n')
    .map((l) => (outdent ? l.replace(/^ {1,2}/, '') : INDENT + l))
    .join('\n');
  ta.setRangeText(changed, from, end, 'select');
}
