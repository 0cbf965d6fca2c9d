// Drives the playground page in headless Chromium for tests/playground_browser.rs.
// Usage: node drive.mjs '<json config>'; prints one JSON report line on stdout. The Rust test
// makes the assertions; this script only acts and observes, so a failed wait still reports what
// the page showed.
//
// Config: { browser, url, mode: "call" | "down", wav?, screenshot?, timeout_ms? }
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const timeout = cfg.timeout_ms ?? 120000;
const report = { mode: cfg.mode, steps: [], states: [], console: [] };

function step(name) {
  report.steps.push(name);
}

// The page's observable state, read from the DOM (what a person sees) and window.playground.
async function snapshot(page) {
  return page.evaluate(() => {
    const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.trim());
    const pg = window.playground || {};
    return {
      state: pg.state,
      status: document.getElementById('status')?.textContent ?? null,
      status_is_error: document.getElementById('status')?.classList.contains('error') ?? false,
      agent_peak: pg.agentPeak ?? 0,
      mic_peak: pg.micPeak ?? 0,
      room: pg.room ?? null,
      identity: pg.identity ?? null,
      caller_lines: texts('#transcript li[data-side="caller"]'),
      agent_lines: texts('#transcript li[data-side="agent"]'),
      transcripts: pg.transcripts ?? [],
      turns: pg.turns ?? [],
      turn_rows: [...document.querySelectorAll('#turns tbody tr')].map((tr) =>
        [...tr.children].map((td) => td.textContent.trim())),
      call_disabled: document.getElementById('call')?.disabled ?? null,
      hangup_disabled: document.getElementById('hangup')?.disabled ?? null,
    };
  });
}

// Polls `cond` on snapshots, recording each state change, until it holds or the time is up.
async function waitFor(page, what, cond, ms = timeout) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await snapshot(page);
    if (report.states[report.states.length - 1] !== s.state) report.states.push(s.state);
    if (cond(s)) return s;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await page.waitForTimeout(100);
  }
}

async function runCall(page) {
  await page.click('#call');
  step('clicked call');
  await waitFor(page, 'the call to connect', (s) => s.state === 'in call' || s.state === 'error');
  step('in call');
  await waitFor(
    page,
    'agent audio, both transcript sides and a turn with a latency',
    (s) =>
      s.state === 'error' ||
      (s.agent_peak > 0 &&
        s.caller_lines.some((l) => l.length > 0) &&
        s.agent_lines.some((l) => l.length > 0) &&
        s.turns.some((t) => typeof t.latency_ms === 'number')),
  );
  step('heard the agent');
  if (cfg.screenshot) {
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    report.screenshot = cfg.screenshot;
    step('screenshot');
  }
  report.in_call = await snapshot(page);
  await page.click('#hangup');
  step('clicked hang up');
  await waitFor(page, 'the call to end', (s) => s.state === 'ended', 30000);
  step('ended');
}

async function runDown(page) {
  await page.click('#call');
  step('clicked call');
  report.down = await waitFor(page, 'an error on the page', (s) => s.state === 'error', 60000);
  step('error shown');
  // Spend the token budget from the page itself, then call once more: the 429 reaches #status.
  report.token_statuses = await page.evaluate(async () => {
    const seen = [];
    for (let i = 0; i < 100; i++) {
      const r = await fetch('/playground/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"room":"playground-limit"}' });
      seen.push(r.status);
      if (r.status === 429) break;
    }
    return seen;
  });
  await page.click('#call');
  const before = report.down.status;
  report.limited = await waitFor(page, 'the rate-limit message', (s) => s.state === 'error' && s.status !== before, 30000);
  step('rate limit shown');
}

let browser;
try {
  const args = [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
  ];
  if (cfg.wav) args.push(`--use-file-for-fake-audio-capture=${cfg.wav}`);
  browser = await chromium.launch({ executablePath: cfg.browser, headless: true, args, timeout: 60000 });
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`.slice(0, 400)));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  // Everything the page fetches (HTTP) and every websocket it opens: no CDN, only its server and LiveKit.
  report.requests = [];
  report.websockets = [];
  page.on('request', (r) => report.requests.push(r.url()));
  page.on('websocket', (ws) => report.websockets.push(ws.url().split('?')[0]));
  const resp = await page.goto(cfg.url, { timeout: 30000 });
  report.http_status = resp ? resp.status() : null;
  report.initial = await snapshot(page);
  step('loaded');
  if (cfg.mode === 'call') await runCall(page);
  else if (cfg.mode === 'down') await runDown(page);
  else throw new Error(`unknown mode ${cfg.mode}`);
  report.final = await snapshot(page);
  report.ok = true;
} catch (err) {
  report.ok = false;
  report.error = String(err && err.stack ? err.stack : err);
  try {
    const pages = browser ? browser.contexts().flatMap((c) => c.pages()) : [];
    if (pages[0]) report.final = await snapshot(pages[0]);
  } catch (_) {
    // The page is gone; the error above says why.
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(report)}\n`);
