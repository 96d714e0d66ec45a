// The dashboard's entry point: sign-in state, the navigation, and the hash router
// (`#/actions`, `#/actions/NAME`, `#/new`, `#/activations?name=…`, …).

import {session} from './api.js';
import * as views from './views.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let stop = null;

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function chrome(signedIn) {
  nav.hidden = !signedIn;
  who.hidden = !signedIn;
  document.getElementById('who-ns').textContent = session.namespace;
}

async function route() {
  if (stop) { stop(); stop = null; }
  if (!session.key) {
    chrome(false);
    views.signIn(main, () => navigate('#/actions'));
    return;
  }
  chrome(true);
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : 'actions';
  const [path, search] = raw.split('?');
  const [section, ...rest] = path.split('/');
  const name = rest.map(decodeURIComponent).join('/');
  const query = new URLSearchParams(search || '');
  for (const a of nav.querySelectorAll('a')) {
    const here = a.getAttribute('href') === `#/${section}` || (section === 'new' && a.getAttribute('href') === '#/actions');
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  switch (section) {
    case 'new': await views.action(main, null, navigate); break;
    case 'actions': await (name ? views.action(main, name, navigate) : views.list(main, 'actions')); break;
    case 'packages': case 'triggers': case 'rules':
      await (name ? views.detail(main, section, name) : views.list(main, section)); break;
    case 'activations': stop = views.activations(main, query); break;
    case 'charts': await views.charts(main); break;
    case 'pool': stop = views.pool(main); break;
    case 'bench': views.bench(main); break;
    default: await views.list(main, 'actions');
  }
  const title = document.getElementById('view-title');
  if (title && document.activeElement === document.body) title.focus({preventScroll: true});
}

document.getElementById('signout').addEventListener('click', () => {
  session.signOut();
  navigate('#/');
});
window.addEventListener('hashchange', () => {
  // The skip link targets #main; it is not a screen.
  if (location.hash.startsWith('#/') || location.hash === '') route();
});
route();
