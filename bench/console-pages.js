// bench/console-pages.js: whole-page load times of the web console in a real browser (Debian's
// chromium driven by puppeteer-core from tests/js; run `bash scripts/install-js-deps` once).
// Started by `bench/console-latency --pages` against its generated delivery log; by hand:
//
//   node bench/console-pages.js --url http://127.0.0.1:PORT --token TOKEN --webhook ID \
//        --filter-webhook ID --delivery DLV_ID [--loads N]
//
// For each page: a fresh navigation (from about:blank) to /ui/#/…, timed from navigation start
// (performance.timeOrigin) until the page's data is in the DOM, i.e. the element the page
// builds last from its API answers exists. The status filter is timed as the operator meets
// it: from choosing a status on the loaded webhook page until the table shows the answer.
// Prints a Markdown table of the median and p95 (nearest rank) of N loads (default 15) and,
// with --relayd-pid, relayd's CPU time (user + system, /proc) per load: what a page costs the
// server whatever else the machine is doing.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

const puppeteer = createRequire(path.join(__dirname, '..', 'tests', 'js', 'package.json'))(
  'puppeteer-core');

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const base = arg('--url');
const token = arg('--token');
const webhook = arg('--webhook');
const filterWebhook = arg('--filter-webhook', webhook);
const filterStatus = arg('--filter-status', 'failed');
const delivery = arg('--delivery');
const loads = Number(arg('--loads', '15'));
const relaydPid = arg('--relayd-pid');  // optional: also report relayd's CPU per load
if (!base || !token || !webhook || !delivery) {
  console.error('usage: node bench/console-pages.js --url URL --token T --webhook ID ' +
                '[--filter-webhook ID] [--filter-status S] --delivery ID [--loads N]');
  process.exit(2);
}
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
if (!chromium) {
  console.error('chromium not found (scripts/install-deps installs Debian\'s chromium)');
  process.exit(2);
}

const TOKEN_KEY = 'relayd.token';  // console.js keeps the token there

// relayd's user + system CPU so far, in ms (fields 14 and 15 of /proc/PID/stat, in ticks).
function relaydCpuMs() {
  if (!relaydPid) return 0;
  const f = fs.readFileSync(`/proc/${relaydPid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;  // fields 14, 15; USER_HZ is 100
}

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const rank = (p) => s[Math.min(s.length, Math.max(1, Math.ceil((s.length * p) / 100))) - 1];
  return { median: rank(50), p95: rank(95), max: s[s.length - 1] };
}

// One navigation; resolves with ms from navigation start until `selector` matched.
async function loadOnce(page, hash, selector) {
  await page.goto('about:blank');
  await page.evaluateOnNewDocument((sel) => {
    const check = () => {
      if (window.__renderedAt === undefined && document.querySelector(sel)) {
        window.__renderedAt = performance.now();
      }
    };
    new MutationObserver(check).observe(document, { childList: true, subtree: true });
  }, selector);
  await page.goto(base + '/ui/' + hash);
  await page.waitForFunction(() => window.__renderedAt !== undefined, { timeout: 30000 });
  const error = await page.$('#page-error');
  if (error) throw new Error(hash + ': ' + (await page.evaluate((e) => e.textContent, error)));
  return page.evaluate(() => window.__renderedAt);
}

// On a loaded webhook page: choose the status, time until the table holds the new answer.
async function filterOnce(page) {
  await loadOnce(page, '#/webhooks/' + encodeURIComponent(filterWebhook), '#deliveries tr');
  return page.evaluate((status) => new Promise((resolve) => {
    const body = document.getElementById('deliveries');
    const select = document.getElementById('filter-status');
    const t0 = performance.now();
    new MutationObserver((_, obs) => {
      const rows = [...body.querySelectorAll('tr')];
      const done = rows.length > 0 &&
        rows.every((r) => r.dataset.status === status || !r.dataset.status);
      if (done) {
        obs.disconnect();
        resolve(performance.now() - t0);
      }
    }).observe(body, { childList: true });
    select.value = status;
    select.dispatchEvent(new Event('change'));
  }), filterStatus);
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(base + '/ui/');
    await page.evaluate((k, t) => sessionStorage.setItem(k, t), TOKEN_KEY, token);
    const cases = [
      ['overview', '#/', () => loadOnce(page, '#/', '#overview .chart-box')],
      ['webhook', '#/webhooks/' + webhook,
       () => loadOnce(page, '#/webhooks/' + encodeURIComponent(webhook), '#deliveries tr')],
      ['webhook, status filter', `#/webhooks/${filterWebhook} → status ${filterStatus}`,
       () => filterOnce(page)],
      ['delivery', '#/deliveries/' + delivery,
       () => loadOnce(page, '#/deliveries/' + encodeURIComponent(delivery), '#delivery .attempt')],
    ];
    console.log(`| page | what | median ms | p95 ms | max ms | loads | relayd CPU ms per load |`);
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, what, run] of cases) {
      await run();  // warm-up: the console's files, the reader connections, the page cache
      const t = [];
      const cpu0 = relaydCpuMs();
      for (let i = 0; i < loads; i++) t.push(await run());
      const cpu = relaydPid ? ((relaydCpuMs() - cpu0) / loads).toFixed(0) : '–';
      const s = stats(t);
      console.log(`| ${name} | \`${what}\` | ${s.median.toFixed(0)} | ${s.p95.toFixed(0)} | ` +
                  `${s.max.toFixed(0)} | ${loads} | ${cpu} |`);
    }
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
