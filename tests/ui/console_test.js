// The web console (SPEC §12) in a real browser: Debian's chromium driven by puppeteer-core
// (tests/js), against the real relayd binary (started here with its own SQLite file) and a
// real HTTP receiver (a Node server here: one endpoint answers 200, one answers 500 with a
// hostile body). Walks: token prompt only without the token → overview marks the failing
// webhook → webhook page → Send test shows the status → delivery page shows the payload and
// the 500 body as text → Redeliver makes a second attempt. Hostile markup from an event and
// from a response must render as text: no script runs, no console error, no CSP violation.
//
// Usage: node console_test.js --relayd PATH [--screenshots DIR]   (ctest passes both)
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

const jsDir = path.join(__dirname, '..', 'js');
const puppeteer = createRequire(path.join(jsDir, 'package.json'))('puppeteer-core');

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const relayd = arg('--relayd');
const shots = arg('--screenshots');
assert.ok(relayd && fs.existsSync(relayd), 'pass --relayd PATH to the built relayd');

const TOKEN = 'console-test-token-0123456789abcdef';
const HOSTILE_DATA = '<img src=x onerror="window.__pwned=\'event\'">';
const HOSTILE_BODY = '<script>window.__pwned="response"</script><b>boom</b> internal error';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error('timed out waiting for ' + what + ' (last: ' + String(last) + ')');
}

function freePort() {
  return new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The subscriber: /ok answers 200, /fail answers 500 with markup in its body.
function startReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ url: req.url, body });
      if (req.url.startsWith('/fail')) {
        res.writeHead(500, { 'Content-Type': 'text/html' });
        res.end(HOSTILE_BODY);
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"ok":true}');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, received, port: server.address().port })));
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relayd-ui-'));
  const receiver = await startReceiver();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, 'token'), TOKEN + '\n', { mode: 0o600 });
  // The key that seals API-managed webhooks' secrets (SPEC §11): base64 of 32 random bytes.
  fs.writeFileSync(path.join(dir, 'secret.key'), crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const hook = (id, p) =>
    `  - id: ${id}\n    url: http://127.0.0.1:${receiver.port}${p}\n    allow_insecure_http: true\n` +
    `    secret: ${id}-secret-0123456789\n    events: ["*"]\n`;
  fs.writeFileSync(path.join(dir, 'relayd.yaml'),
    `server:\n  listen: 127.0.0.1:${port}\n  token_file: ${path.join(dir, 'token')}\n` +
    `storage:\n  path: ${path.join(dir, 'relayd.db')}\n  secret_key_file: ${path.join(dir, 'secret.key')}\n` +
    'delivery:\n  concurrency: 8\n  timeout: 5s\n  retry_schedule: [0s]\n  allow_private_networks: true\n' +
    'shutdown_grace: 2s\nlogging:\n  level: info\n  format: text\n' +
    'webhooks:\n' + hook('crm', '/ok') + hook('billing', '/fail'), { mode: 0o600 });

  const daemon = spawn(relayd, ['serve', '--config', path.join(dir, 'relayd.yaml')], { stdio: ['ignore', 'inherit', 'inherit'] });
  let browser;
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  // The folder holds the token and the sealing key: removed after a pass, kept (and named) after
  // a failure so the database and config can be looked at.
  const cleanup = async (passed) => {
    if (browser) await browser.close().catch(() => {});
    daemon.kill('SIGTERM');
    receiver.server.close();
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (passed) fs.rmSync(dir, { recursive: true, force: true });
    else console.error('console_test: files kept in ' + dir);
  };
  let passed = false;
  try {
    const call = async (method, p, body) => {
      const res = await fetch(base + p, {
        method,
        headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    await waitFor('relayd /readyz', async () => (await fetch(base + '/readyz')).status === 200);

    // One event reaches both webhooks: crm succeeds, billing fails (one attempt, 500).
    const event = { id: 'evt_ui_1', event: 'ticket.created', data: { ticket: { id: 'tkt_1', subject: HOSTILE_DATA } } };
    const intake = await call('POST', '/v1/events', event);
    assert.equal(intake.status, 202, JSON.stringify(intake.body));
    const failed = await waitFor('the billing delivery to fail', async () => {
      const r = await call('GET', '/v1/deliveries?webhook=billing&status=failed');
      return r.body.deliveries[0];
    });
    await waitFor('the crm delivery to succeed', async () => (await call('GET', '/v1/deliveries?webhook=crm&status=succeeded')).body.deliveries[0]);

    // The aggregates answer for the console (and anyone else with the token).
    const stats = await call('GET', '/v1/stats/webhooks');
    assert.equal(stats.status, 200);
    const billingStats = stats.body.webhooks.find((w) => w.id === 'billing');
    assert.equal(billingStats.last_hour.failed, 1);
    assert.equal(billingStats.last_hour.success_rate, 0);
    const perMinute = await call('GET', '/v1/stats/attempts?hours=24');
    assert.equal(perMinute.body.minutes.reduce((s, m) => s + m.succeeded + m.failed + m.retry, 0), 2);
    assert.equal((await call('GET', '/v1/stats/attempts?hours=0')).status, 400);
    // The pages' summary: the same figures from one pass, only billing's when asked.
    const summary = await call('GET', '/v1/stats/summary?webhook=billing');
    assert.equal(summary.status, 200);
    assert.deepEqual(summary.body.webhooks.map((w) => w.id), ['billing']);
    assert.equal(summary.body.webhooks[0].last_hour.failed, 1);
    assert.equal(summary.body.webhooks[0].last_day.success_rate, 0);
    assert.equal(summary.body.minutes.reduce((s, m) => s + m.succeeded + m.failed + m.retry, 0), 1);
    const everyone = await call('GET', '/v1/stats/summary');
    assert.deepEqual(everyone.body.webhooks.map((w) => w.id).sort(), ['billing', 'crm']);
    assert.equal(everyone.body.minutes.reduce((s, m) => s + m.succeeded + m.failed + m.retry, 0), 2);
    assert.equal((await call('GET', '/v1/stats/summary?webhook=')).status, 400);
    assert.equal((await fetch(base + '/v1/stats/webhooks')).status, 401);

    browser = await puppeteer.launch({
      executablePath: process.env.RELAY_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      // Chromium's sandbox refuses to run as root (CI runs as root).
      args: [...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--no-first-run'],
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 760 });
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push('console error: ' + m.text());
    });
    page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
    page.on('requestfailed', (r) => problems.push('request failed: ' + r.url()));
    page.on('dialog', (d) => {
      problems.push('dialog: ' + d.message());
      d.dismiss();
    });

    const shot = async (name) => {
      if (!shots) return;
      fs.mkdirSync(shots, { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(shots, name + '.png') });
    };
    const text = (sel) => page.$eval(sel, (e) => e.textContent);

    // 1. Without the token: the prompt and nothing else.
    const ui = await page.goto(base + '/ui/', { waitUntil: 'networkidle0' });
    const csp = ui.headers()['content-security-policy'];
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    await page.waitForSelector('#token-form:not([hidden])');
    assert.equal(await page.$eval('#main', (e) => e.hidden && e.childElementCount === 0), true);
    const visible = await page.evaluate(() => document.body.innerText);
    assert.doesNotMatch(visible, /billing|crm/);
    await shot('token');

    // A wrong token is refused and the prompt stays.
    await page.type('#token-input', 'wrong-token');
    await page.click('#token-submit');
    await page.waitForFunction(() => document.getElementById('token-error').textContent.includes('refused'));
    assert.equal(await page.$eval('#main', (e) => e.hidden), true);
    problems.splice(0); // the refused token's 401 is logged by Chromium as a failed resource

    // 2. With the token: the overview marks billing as failing, crm not.
    await page.type('#token-input', TOKEN);
    await page.click('#token-submit');
    await page.waitForSelector('#webhooks tr[data-webhook="billing"]');
    assert.equal(await page.$eval('tr[data-webhook="billing"]', (e) => e.classList.contains('failing') && e.textContent.includes('failing')), true);
    assert.equal(await page.$eval('tr[data-webhook="crm"]', (e) => e.classList.contains('failing')), false);
    assert.match(await page.$eval('tr[data-webhook="billing"]', (e) => e.textContent), /0\.0 %/);
    assert.match(await page.$eval('tr[data-webhook="crm"]', (e) => e.textContent), /100\.0 %/);
    // Two attempts (crm succeeded, billing failed): one bar each, in its outcome's path.
    assert.deepEqual(await page.$$eval('svg.chart path', (ps) => ps.map((p) => [p.getAttribute('class'), (p.getAttribute('d').match(/M/g) || []).length])),
                     [['succeeded', 1], ['failed', 1]]);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('relayd.token')), TOKEN);
    assert.equal(await page.evaluate(() => document.cookie), '');
    await shot('overview');

    // 3. The webhook page: its deliveries, and Send test against the failing endpoint.
    await page.click('tr[data-webhook="billing"] a');
    await page.waitForSelector('#deliveries tr[data-status="failed"]');
    await page.select('#test-event', 'ticket.updated');
    await page.click('#send-test');
    await page.waitForSelector('#test-status');
    assert.equal(await text('#test-status'), '500');
    assert.equal(await text('#test-body'), HOSTILE_BODY);
    await page.select('#filter-status', 'succeeded');
    await page.waitForFunction(() => document.querySelector('#deliveries').textContent.includes('No deliveries match'));
    await page.select('#filter-status', '');
    await page.waitForSelector('#deliveries tr[data-status="failed"]');
    await shot('webhook');

    // 3b. Disable, then enable again (SPEC §10): the daemon's state follows each click.
    await page.click('#disable');
    await page.waitForFunction(() => document.getElementById('action-result').textContent.includes('Disabled'));
    await waitFor('billing disabled', async () => (await call('GET', '/v1/webhooks/billing')).body.state === 'disabled');
    await page.click('#enable');
    await page.waitForFunction(() => document.getElementById('action-result').textContent.includes('Enabled'));
    await waitFor('billing enabled', async () => (await call('GET', '/v1/webhooks/billing')).body.state === 'enabled');

    // 4. The delivery page: payload pretty-printed, the 500 and its body, as text.
    await page.click(`#deliveries a[href="#/deliveries/${failed.id}"]`);
    await page.waitForSelector('#delivery .response-body');
    assert.equal(await text('#dlv-id'), failed.id);
    const payload = await text('#payload');
    assert.ok(payload.includes(JSON.stringify(HOSTILE_DATA)), payload);  // as JSON text
    assert.ok(payload.includes('\n  "data": {'), 'pretty-printed: ' + payload);
    assert.equal(await text('.attempt .response-status'), '500');
    assert.equal(await text('.attempt .response-body'), HOSTILE_BODY);
    await shot('delivery');

    // 5. Redeliver: a second attempt is made (and fails the same way).
    await page.click('#redeliver');
    await page.waitForFunction(() => document.getElementById('redeliver-result').textContent.includes('Redelivery queued'));
    await waitFor('the second attempt', async () => (await call('GET', '/v1/deliveries/' + failed.id)).body.attempt_count === 2);
    await page.reload({ waitUntil: 'networkidle0' });  // the token survives in this tab
    await page.waitForFunction(() => document.querySelectorAll('.attempt').length === 2);

    // 6. Recover (SPEC §10) from the webhook page: the failed deliveries since a time are due
    // again, and the page says how many.
    await page.goto(base + '/ui/#/webhooks/billing', { waitUntil: 'networkidle0' });
    await page.waitForSelector('#recover-since');
    await page.$eval('#recover-since', (e) => {
      const d = new Date(Date.now() - 3600 * 1000);
      const pad = (n) => String(n).padStart(2, '0');
      e.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    });
    await page.click('#recover');
    await page.waitForFunction(() => /Recovered [1-9]\d* failed deliveries/.test(document.getElementById('action-result').textContent));

    // 7. An API-managed webhook (SPEC §11): edit its URL and rotate its secret from its page.
    const created = await call('POST', '/v1/webhooks', {
      id: 'cust', url: `http://127.0.0.1:${receiver.port}/ok`, events: ['ticket.created'], allow_insecure_http: true,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await page.goto(base + '/ui/#/webhooks/cust', { waitUntil: 'networkidle0' });
    await page.waitForSelector('#edit-url');
    await page.$eval('#edit-url', (e) => { e.value = ''; });
    await page.type('#edit-url', `http://127.0.0.1:${receiver.port}/ok2`);
    await page.click('#edit');
    await page.waitForFunction(() => document.getElementById('action-result').textContent.includes('Saved'));
    assert.equal((await call('GET', '/v1/webhooks/cust')).body.url, `http://127.0.0.1:${receiver.port}/ok2`);
    await page.click('#rotate');
    await page.waitForSelector('#new-secret');
    const rotated = await text('#new-secret');
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, created.body.secret);
    // A file webhook offers neither (409 managed_by_config would be the answer).
    await page.goto(base + '/ui/#/webhooks/crm', { waitUntil: 'networkidle0' });
    // A hash change keeps the old page until the new one renders: wait for crm's own heading.
    await page.waitForFunction(() => document.getElementById('wh-id')?.textContent === 'crm' && document.getElementById('recover'));
    assert.equal(await page.$('#edit'), null);

    // Nothing hostile ran or was parsed as markup, and the page logged no error.
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.$$eval('#main img, #main script, #main b', (n) => n.length), 0);
    assert.deepEqual(problems, []);

    // The policy is enforced, not only sent: an inline script injected now is refused.
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.appendChild(s);
    });
    assert.equal(await page.evaluate(() => window.__inline), undefined);
    await waitFor('the CSP violation report', () => problems.some((p) => /Content Security Policy/.test(p)), 5000);

    // Forget token: back to the prompt alone, and the token is gone from the tab.
    await page.click('#forget');
    await page.waitForSelector('#token-form:not([hidden])');
    assert.equal(await page.$eval('#main', (e) => e.hidden && e.childElementCount === 0), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('relayd.token')), null);

    // The console's files are plain GETs with the same policy; unknown ones are 404.
    const js = await fetch(base + '/ui/console.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /javascript/);
    assert.equal((await fetch(base + '/ui/nope.js')).status, 404);
    const redirect = await fetch(base + '/ui', { redirect: 'manual' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/ui/');
    console.log('console_test: all checks passed' + (shots ? ', screenshots in ' + shots : ''));
    passed = true;
  } finally {
    await cleanup(passed);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
