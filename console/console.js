// relayd web console (SPEC §12). Served from the binary; talks only to the admin API of the
// origin it came from. Rules kept throughout:
// - the token lives in sessionStorage (this tab) and goes out as a Bearer header, never a
//   cookie, so another site cannot make the browser act with it (no CSRF);
// - every value from an event, a response or the database reaches the page as text
//   (textContent / createTextNode via el()), never as markup: no innerHTML anywhere;
// - no inline script or style (the CSP forbids them), no request to another origin.
'use strict';

const TOKEN_KEY = 'relayd.token';
const STATUSES = ['pending', 'delivering', 'paused', 'succeeded', 'failed', 'cancelled', 'dropped'];
const OUTCOMES = ['succeeded', 'retry', 'failed'];
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---- small DOM helpers: strings always become text nodes ----

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function link(href, text) {
  return el('a', { href }, text);
}

function badge(text, kind) {
  return el('span', { className: 'badge ' + (kind || text) }, text);
}

function fmtPercent(rate) {
  return rate === null || rate === undefined ? '–' : (rate * 100).toFixed(1) + ' %';
}

function fmtMs(ms) {
  return ms === null || ms === undefined ? '–' : ms + ' ms';
}

function fmtTime(t) {
  return t ? String(t) : '–';
}

// ---- the token and the API ----

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenForm('The token was refused. Enter it again.');
    throw new ApiError(401, 'unauthorized', 'the token was refused');
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code || 'http_' + res.status,
                       err.message || 'HTTP ' + res.status);
  }
  return data;
}

function errorText(e) {
  return e instanceof ApiError ? e.status + ' ' + e.code + ': ' + e.message : String(e);
}

// ---- the shell: token prompt or a page ----

const main = () => document.getElementById('main');

function showTokenForm(message) {
  main().hidden = true;
  main().replaceChildren();
  document.getElementById('crumbs').replaceChildren();
  document.getElementById('forget').hidden = true;
  document.getElementById('token-form').hidden = false;
  document.getElementById('token-error').textContent = message || '';
  document.getElementById('token-input').focus();
}

async function onTokenSubmit(ev) {
  ev.preventDefault();
  const input = document.getElementById('token-input');
  sessionStorage.setItem(TOKEN_KEY, input.value);
  input.value = '';
  try {
    await api('GET', '/v1/webhooks');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showTokenForm(errorText(e));
    return;
  }
  route();
}

function setCrumbs(...parts) {
  document.getElementById('crumbs').replaceChildren(...parts.flatMap((p) => [' › ', p]));
}

let generation = 0;  // a page that finishes loading after the user moved on draws nothing

async function route() {
  if (!token()) {
    showTokenForm('');
    return;
  }
  document.getElementById('token-form').hidden = true;
  document.getElementById('forget').hidden = false;
  main().hidden = false;
  const mine = ++generation;
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  let page;
  let m;
  if ((m = /^\/webhooks\/(.+)$/.exec(hash))) page = webhookPage(m[1]);
  else if ((m = /^\/deliveries\/(.+)$/.exec(hash))) page = deliveryPage(m[1]);
  else page = overviewPage();
  try {
    const content = await page;
    if (mine === generation) main().replaceChildren(content);
  } catch (e) {
    if (mine !== generation || (e instanceof ApiError && e.status === 401)) return;
    main().replaceChildren(el('p', { className: 'error', id: 'page-error' }, errorText(e)));
  }
}

// ---- shared pieces ----

// Webhook state per SPEC §10 when the API gives it (state, circuit, …), else `enabled`.
function stateCell(wh) {
  const out = [];
  if (typeof wh.state === 'string') {
    out.push(badge(wh.state, wh.state === 'enabled' ? 'ok' : 'bad'));
    if (wh.disabled_reason) out.push(' ', el('span', { className: 'muted' }, wh.disabled_reason));
  } else if (wh.state && typeof wh.state === 'object') {
    const s = wh.state.status || wh.state.state || JSON.stringify(wh.state);
    out.push(badge(String(s), s === 'enabled' ? 'ok' : 'bad'));
    if (wh.state.reason) out.push(' ', el('span', { className: 'muted' }, wh.state.reason));
  } else {
    out.push(wh.enabled === false ? badge('disabled_by_config', 'bad') : badge('enabled', 'ok'));
  }
  return out;
}

function circuitText(wh) {
  const c = wh.circuit;
  if (c === undefined || c === null) return null;
  if (typeof c === 'string') return c + (wh.circuit_open_until ? ' until ' + wh.circuit_open_until : '');
  return (c.state || c.status || 'closed') + (c.until || c.open_until ? ' until ' + (c.until || c.open_until) : '');
}

function isFailing(wh, stats) {
  const circuit = circuitText(wh);
  if (circuit && circuit.startsWith('open')) return true;
  if (wh.state && wh.state !== 'enabled' && typeof wh.state === 'string' && wh.state.startsWith('disabled') && wh.state !== 'disabled_by_config') return true;
  if (wh.consecutive_failures > 0) return true;
  if (wh.last_failure_at && (!wh.last_success_at || wh.last_failure_at > wh.last_success_at)) return true;
  const hour = stats && stats.last_hour;
  return !!(hour && hour.attempts > 0 && hour.succeeded === 0);
}

function managedByConfig(wh) {
  return wh.source === 'config' || wh.managed_by === 'config';
}

// Attempts per minute by outcome as stacked SVG bars, one per minute of the window.
function attemptsChart(data) {
  const since = Date.parse(data.since);
  const until = Date.parse(data.until);
  const minutes = Math.max(1, Math.ceil((until - since) / 60000));
  const width = 1440;
  const height = 120;
  const top = 4;
  const bottom = 2;
  const barW = width / minutes;
  const max = Math.max(1, ...data.minutes.map((m) => m.succeeded + m.retry + m.failed));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', class: 'chart', role: 'img' });
  const title = svg('title');
  title.textContent = 'Attempts per minute by outcome, ' + data.since + ' to ' + data.until + ' (peak ' + max + ')';
  chart.appendChild(title);
  const plot = height - top - bottom;
  // One path per outcome, one closed rectangle in it per minute: a day is up to 4,320 bars,
  // and as many <rect> elements cost the browser more than the data did to fetch.
  const bars = Object.fromEntries(OUTCOMES.map((o) => [o, []]));
  for (const m of data.minutes) {
    const x = ((Date.parse(m.minute) - since) / 60000) * barW;
    let y = height - bottom;
    for (const outcome of OUTCOMES) {
      const n = m[outcome];
      if (!n) continue;
      const h = (n / max) * plot;
      y -= h;
      // At least 3 of 1440 units wide, so that a lone minute stays visible.
      const w = Math.max(barW, 3);
      bars[outcome].push(`M${Math.min(x, width - w).toFixed(2)} ${y.toFixed(2)}h${w.toFixed(2)}v${h.toFixed(2)}h${(-w).toFixed(2)}z`);
    }
  }
  for (const outcome of OUTCOMES) {
    if (bars[outcome].length) chart.appendChild(svg('path', { d: bars[outcome].join(''), class: outcome }));
  }
  // Time labels in HTML under the chart: SVG text would be stretched with the bars.
  const axis = el('div', { className: 'axis' });
  for (let i = 0; i <= 4; i++) {
    axis.appendChild(el('span', {}, new Date(since + ((until - since) * i) / 4).toISOString().slice(11, 16) + 'Z'));
  }
  const total = (o) => data.minutes.reduce((s, m) => s + m[o], 0);
  const legend = el('p', { className: 'legend' },
                    OUTCOMES.map((o) => el('span', { className: o }, '■ ' + o + ' ' + total(o))),
                    el('span', { className: 'muted' }, 'peak ' + max + ' per minute'));
  return el('div', { className: 'chart-box' }, chart, axis, legend);
}

function statsFacts(s) {
  const row = (label, w) => [el('dt', {}, label),
    el('dd', {}, w ? `${fmtPercent(w.success_rate)} success · p50 ${fmtMs(w.p50_ms)} · p99 ${fmtMs(w.p99_ms)} · ${w.attempts} attempts (${w.succeeded} ok, ${w.retry} retry, ${w.failed} failed)` : 'no attempts')];
  return el('dl', { className: 'facts' }, row('last hour', s && s.last_hour), row('last day', s && s.last_day));
}

// ---- overview ----

async function overviewPage() {
  setCrumbs('webhooks');
  // The summary holds both the per-webhook windows and the chart's minutes: one pass over the
  // day's attempts in relayd instead of three (docs/console.md, Speed).
  const [list, summary] = await Promise.all([api('GET', '/v1/webhooks'), api('GET', '/v1/stats/summary')]);
  const minutes = summary;
  const byId = new Map(summary.webhooks.map((s) => [s.id, s]));
  const head = el('tr', {}, el('th', {}, 'webhook'), el('th', {}, 'state'), el('th', {}, 'circuit'),
    el('th', { className: 'num' }, 'success 1 h'), el('th', { className: 'num' }, 'p50 / p99 1 h'),
    el('th', { className: 'num' }, 'success 24 h'), el('th', { className: 'num' }, 'p50 / p99 24 h'),
    el('th', {}, 'deliveries by status'), el('th', {}, 'last success'));
  const rows = list.webhooks.map((wh) => {
    const s = byId.get(wh.id);
    const failing = isFailing(wh, s);
    const counts = STATUSES.filter((st) => wh.deliveries && wh.deliveries[st] > 0)
      .map((st) => [badge(st + ' ' + wh.deliveries[st], st), ' ']);
    const h = s && s.last_hour;
    const d = s && s.last_day;
    return el('tr', { className: failing ? 'failing' : '', 'data-webhook': wh.id },
      el('td', {}, link('#/webhooks/' + encodeURIComponent(wh.id), wh.id), failing ? [' ', badge('failing')] : null,
        el('div', { className: 'muted' }, wh.url)),
      el('td', {}, stateCell(wh)), el('td', {}, circuitText(wh) || '–'),
      el('td', { className: 'num' }, fmtPercent(h && h.success_rate)),
      el('td', { className: 'num' }, fmtMs(h && h.p50_ms) + ' / ' + fmtMs(h && h.p99_ms)),
      el('td', { className: 'num' }, fmtPercent(d && d.success_rate)),
      el('td', { className: 'num' }, fmtMs(d && d.p50_ms) + ' / ' + fmtMs(d && d.p99_ms)),
      el('td', {}, counts.length ? counts : el('span', { className: 'muted' }, 'none')),
      el('td', {}, fmtTime(wh.last_success_at)));
  });
  return el('section', { id: 'overview' },
    el('h1', {}, 'Webhooks'),
    el('table', { id: 'webhooks' }, el('thead', {}, head), el('tbody', {}, rows)),
    el('h2', {}, 'Attempts per minute, last 24 hours'), attemptsChart(minutes));
}

// ---- a webhook ----

// A delivery id is "dlv_" + a ULID whose first 10 characters are the creation time in ms
// (Crockford base32), so "created before T" is "id < dlv_<T>000…" for the API's `before`.
function ulidTimeBound(ms) {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = alphabet[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return 'dlv_' + out + '0'.repeat(16);
}

function resultBox(id) {
  return el('div', { id, className: 'result', 'aria-live': 'polite' });
}

async function runAction(box, label, fn) {
  box.replaceChildren(el('span', { className: 'muted' }, label + '…'));
  try {
    const out = await fn();
    box.replaceChildren(...(Array.isArray(out) ? out : [out]));
  } catch (e) {
    box.replaceChildren(el('span', { className: 'error' }, label + ' failed: ' + errorText(e)));
  }
}

async function webhookPage(id) {
  setCrumbs(link('#/', 'webhooks'), id);
  // Recent deliveries with filters. The first page of them is asked for together with the
  // rest: one round of parallel calls, not two in a row (the page's load time is its slowest call).
  const statusSel = el('select', { id: 'filter-status' }, el('option', { value: '' }, 'any status'), STATUSES.map((st) => el('option', { value: st }, st)));
  const eventSel = el('select', { id: 'filter-event' }, el('option', { value: '' }, 'any event'));
  const before = el('input', { type: 'datetime-local', id: 'filter-before' });
  const tableBody = el('tbody', { id: 'deliveries' });
  const more = el('button', { type: 'button', id: 'older', hidden: true }, 'Older');
  let next = null;
  async function load(reset) {
    const q = new URLSearchParams({ webhook: id, limit: '50' });
    if (statusSel.value) q.set('status', statusSel.value);
    if (eventSel.value) q.set('event', eventSel.value);
    if (!reset && next) q.set('before', next);
    else if (before.value) q.set('before', ulidTimeBound(Date.parse(before.value)));
    const r = await api('GET', '/v1/deliveries?' + q);
    if (reset) tableBody.replaceChildren();
    for (const d of r.deliveries) {
      tableBody.appendChild(el('tr', { 'data-status': d.status },
        el('td', {}, link('#/deliveries/' + encodeURIComponent(d.id), d.id)), el('td', {}, d.event),
        el('td', {}, badge(d.status)), el('td', { className: 'num' }, d.attempt_count),
        el('td', { className: 'num' }, d.last_status_code === null ? '–' : d.last_status_code),
        el('td', {}, d.last_error || ''), el('td', {}, d.created_at)));
    }
    if (reset && r.deliveries.length === 0) tableBody.appendChild(el('tr', {}, el('td', { colspan: 7, className: 'muted' }, 'No deliveries match.')));
    next = r.next_before;
    more.hidden = !next;
  }

  // This webhook only: its own deliveries counted, its own attempts summed (docs/console.md).
  const path = '/v1/webhooks/' + encodeURIComponent(id);
  const [wh, summary, catalogue] = await Promise.all([
    api('GET', path), api('GET', '/v1/stats/summary?webhook=' + encodeURIComponent(id)),
    fetch('event-types.json', { cache: 'no-store' }).then((r) => r.json()),
    load(true),
  ]);
  const minutes = summary;
  const s = summary.webhooks.find((x) => x.id === id);

  const facts = el('dl', { className: 'facts' },
    el('dt', {}, 'URL'), el('dd', {}, wh.url),
    el('dt', {}, 'events'), el('dd', {}, (wh.events || []).join(', ')),
    el('dt', {}, 'state'), el('dd', { id: 'wh-state' }, stateCell(wh)),
    el('dt', {}, 'circuit'), el('dd', {}, circuitText(wh) || '–'),
    el('dt', {}, 'last success'), el('dd', {}, fmtTime(wh.last_success_at)),
    el('dt', {}, 'last failure'), el('dd', {}, fmtTime(wh.last_failure_at)),
    wh.consecutive_failures !== undefined ? [el('dt', {}, 'consecutive failures'), el('dd', {}, wh.consecutive_failures)] : null);

  // Send test: the event types this webhook subscribes to ("*" and "group.*" expanded).
  const subscribed = catalogue.filter((t) => (wh.events || []).some((p) => p === '*' || p === t || (p.endsWith('.*') && t.startsWith(p.slice(0, -1)))));
  const testType = el('select', { id: 'test-event' }, (subscribed.length ? subscribed : catalogue).map((t) => el('option', { value: t }, t)));
  const testOut = resultBox('test-result');
  const testPanel = el('div', { className: 'panel' }, el('h2', {}, 'Send test'),
    el('div', { className: 'row' }, el('label', {}, 'event type', testType),
      el('button', { type: 'button', id: 'send-test', onclick: () => runAction(testOut, 'Send test', async () => {
        const r = await api('POST', path + '/test', { event: testType.value });
        return el('dl', { className: 'facts' },
          el('dt', {}, 'status'), el('dd', { id: 'test-status' }, r.status === null ? 'no answer' : String(r.status)),
          el('dt', {}, 'latency'), el('dd', {}, fmtMs(r.latency_ms)),
          r.error ? [el('dt', {}, 'error'), el('dd', { className: 'error' }, r.error)] : null,
          el('dt', {}, 'body'), el('dd', {}, el('pre', { id: 'test-body' }, r.body + (r.body_truncated ? '\n… (truncated)' : ''))));
      }) }, 'Send test')),
    testOut);

  // Enable / disable / recover (SPEC §10) and edit / rotate (SPEC §11, API-managed only).
  const actionOut = resultBox('action-result');
  const post = (suffix, body, describe) => () => runAction(actionOut, suffix, async () => describe(await api('POST', path + '/' + suffix, body)));
  const since = el('input', { type: 'datetime-local', id: 'recover-since', required: true });
  const until = el('input', { type: 'datetime-local', id: 'recover-until' });
  const toIso = (v) => new Date(v).toISOString();
  const controls = el('div', { className: 'panel' }, el('h2', {}, 'Operate'),
    el('div', { className: 'row' },
      el('button', { type: 'button', id: 'enable', onclick: post('enable', {}, () => 'Enabled: paused deliveries resume, oldest first.') }, 'Enable'),
      el('button', { type: 'button', id: 'disable', onclick: post('disable', {}, () => 'Disabled: unfinished deliveries are paused.') }, 'Disable')),
    el('div', { className: 'row' }, el('label', {}, 'recover failed deliveries created since', since), el('label', {}, 'until (optional)', until),
      el('button', { type: 'button', id: 'recover', onclick: () => {
        if (!since.value) { actionOut.replaceChildren(el('span', { className: 'error' }, 'Pick the time to recover from.')); return; }
        const body = { since: toIso(since.value) };
        if (until.value) body.until = toIso(until.value);
        post('recover', body, (r) => 'Recovered ' + (r && r.recovered !== undefined ? r.recovered : JSON.stringify(r)) + ' failed deliveries.')();
      } }, 'Recover')),
    actionOut);
  if (!managedByConfig(wh)) {
    const url = el('input', { type: 'url', id: 'edit-url', value: wh.url, size: 50 });
    const events = el('input', { type: 'text', id: 'edit-events', value: (wh.events || []).join(', '), size: 40 });
    const expires = el('input', { type: 'text', id: 'rotate-expires', value: '24h', size: 6 });
    append(controls, [el('div', { className: 'row' }, el('label', {}, 'URL', url), el('label', {}, 'events (comma-separated)', events),
      el('button', { type: 'button', id: 'edit', onclick: () => runAction(actionOut, 'Save', async () => {
        const body = { url: url.value, events: events.value.split(',').map((e) => e.trim()).filter(Boolean) };
        await api('PATCH', path, body);
        return 'Saved; the next attempt uses it.';
      }) }, 'Save')),
    el('div', { className: 'row' }, el('label', {}, 'keep the old secret for', expires),
      el('button', { type: 'button', id: 'rotate', onclick: () => runAction(actionOut, 'Rotate secret', async () => {
        const r = await api('POST', path + '/rotate-secret', { expires_in: expires.value });
        return [el('p', {}, 'New secret (shown once; copy it to the receiver now):'), el('pre', { id: 'new-secret' }, r && r.secret ? r.secret : JSON.stringify(r))];
      }) }, 'Rotate secret'))]);
  }

  append(eventSel, catalogue.map((t) => el('option', { value: t }, t)));
  const listError = el('p', { className: 'error' });
  const reload = (reset) => load(reset).then(() => listError.replaceChildren(), (e) => listError.replaceChildren(errorText(e)));
  for (const f of [statusSel, eventSel, before]) f.addEventListener('change', () => reload(true));
  more.addEventListener('click', () => reload(false));

  return el('section', { id: 'webhook' },
    el('h1', {}, 'Webhook ', el('span', { id: 'wh-id' }, id), isFailing(wh, s) ? [' ', badge('failing')] : null),
    el('div', { className: 'panel' }, facts), el('div', { className: 'panel' }, statsFacts(s)),
    attemptsChart(minutes), testPanel, controls,
    el('h2', {}, 'Recent deliveries'),
    el('div', { className: 'row' }, el('label', {}, 'status', statusSel), el('label', {}, 'event type', eventSel), el('label', {}, 'created before', before)),
    listError,
    el('table', {}, el('thead', {}, el('tr', {}, ['delivery', 'event', 'status', 'attempts', 'last status', 'last error', 'created'].map((h) => el('th', {}, h)))), tableBody),
    more);
}

// ---- a delivery ----

function headerRows(headers) {
  let pairs = [];
  if (Array.isArray(headers)) pairs = headers.map((h) => (Array.isArray(h) ? h : [h.name, h.value]));
  else if (headers && typeof headers === 'object') pairs = Object.entries(headers);
  else if (typeof headers === 'string' && headers) return el('pre', {}, headers);
  if (!pairs.length) return el('span', { className: 'muted' }, 'none');
  return el('table', { className: 'headers' }, el('tbody', {}, pairs.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, Array.isArray(v) ? v.join(', ') : String(v))))));
}

function prettyPayload(payload) {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch (e) {
    return String(payload);
  }
}

async function deliveryPage(id) {
  const d = await api('GET', '/v1/deliveries/' + encodeURIComponent(id));
  setCrumbs(link('#/', 'webhooks'), link('#/webhooks/' + encodeURIComponent(d.webhook), d.webhook), id);
  const out = resultBox('redeliver-result');
  const redeliver = el('button', { type: 'button', id: 'redeliver', onclick: () => runAction(out, 'Redeliver', async () => {
    const r = await api('POST', '/v1/deliveries/' + encodeURIComponent(id) + '/redeliver');
    setTimeout(() => { if (location.hash === '#/deliveries/' + encodeURIComponent(id)) route(); }, 1500);
    return 'Redelivery queued: status ' + r.status + '.';
  }) }, 'Redeliver');
  const payload = d.payload === undefined || d.payload === null
    ? el('p', { className: 'muted', id: 'payload-missing' }, 'This relayd does not return payloads.')
    : el('pre', { id: 'payload' }, prettyPayload(d.payload));
  const attempts = (d.attempts || []).map((a) => el('div', { className: 'attempt', 'data-attempt': a.attempt_number },
    el('h3', {}, 'Attempt ' + a.attempt_number + ' ', badge(a.outcome), ' ', el('span', { className: 'muted' }, a.started_at + ' · ' + a.duration_ms + ' ms')),
    el('dl', { className: 'facts' },
      el('dt', {}, 'URL'), el('dd', {}, a.url),
      el('dt', {}, 'response status'), el('dd', { className: 'response-status' }, a.response_status === null ? 'no answer' : String(a.response_status)),
      el('dt', {}, 'error'), el('dd', { className: 'error' }, a.error || ''),
      el('dt', {}, 'request headers'), el('dd', {}, headerRows(a.request_headers)),
      el('dt', {}, 'response headers'), el('dd', {}, headerRows(a.response_headers)),
      el('dt', {}, 'response body'), el('dd', {}, el('pre', { className: 'response-body' }, a.response_body || '')))));
  return el('section', { id: 'delivery' },
    el('h1', {}, 'Delivery ', el('span', { id: 'dlv-id' }, d.id), ' ', badge(d.status)),
    el('div', { className: 'panel' }, el('dl', { className: 'facts' },
      el('dt', {}, 'event'), el('dd', {}, d.event + ' (' + d.event_id + ')'),
      el('dt', {}, 'webhook'), el('dd', {}, link('#/webhooks/' + encodeURIComponent(d.webhook), d.webhook)),
      el('dt', {}, 'status'), el('dd', { id: 'dlv-status' }, d.status),
      el('dt', {}, 'attempts'), el('dd', {}, d.attempt_count),
      el('dt', {}, 'next attempt'), el('dd', {}, fmtTime(d.next_attempt_at)),
      el('dt', {}, 'created'), el('dd', {}, d.created_at),
      el('dt', {}, 'updated'), el('dd', {}, d.updated_at),
      el('dt', {}, 'last error'), el('dd', {}, d.last_error || '–')),
    el('div', { className: 'row' }, redeliver), out),
    el('h2', {}, 'Payload'), payload,
    el('h2', {}, 'Attempts'), attempts.length ? attempts : el('p', { className: 'muted' }, 'No attempt yet.'));
}

// ---- start ----

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('token-form').addEventListener('submit', onTokenSubmit);
  document.getElementById('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenForm('');
  });
  window.addEventListener('hashchange', route);
  route();
});
