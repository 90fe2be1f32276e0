/**
 * The status page in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * controller on the lab's Swarm and Redis: sign in with the token, read resources, quota bars and
 * the leader, break the managed service by hand and watch the drift and its repair arrive live.
 * Screenshots go to test-artifacts/screenshots/.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSink } from '../../src/controller/event-sink.js';
import { openEventStream, type RedisEventStream } from '../../src/desired/events.js';
import { KeySpace } from '../../src/desired/keys.js';
import type { ControllerApp } from '../../src/main.js';
import { ControllerLab } from '../support/controller.js';
import { eventually } from '../support/eventually.js';

const CHROMIUM = '/usr/bin/chromium';
/** What this machine's Chromium needs: no sandbox as root, and no calls home (the network is closed). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = 'test-artifacts/screenshots';
const STAND_IN = path.resolve('test/fixtures/bin/xfs_quota');
const SLEEPER = { image: 'local/busybox:1', command: ['sleep', '3600'], stopGracePeriod: '1s' };
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Quota and use per user, so that the bars sort as alice (91%), carol (78%), bob (29%), dave (no limit). */
const USERS = {
  alice: { quota: '1Gi', used: 930 * MiB },
  bob: { quota: '2Gi', used: 600 * MiB },
  carol: { quota: '1Gi', used: 800 * MiB },
  dave: { quota: 0, used: 3 * GiB },
} as const;

const run = promisify(execFile);
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).stdout.trim();

const TOKEN = randomBytes(24).toString('hex');
let lab: ControllerLab;
let work: string;
let root: string;
let stateFile: string;
let leader: ControllerApp;
let base: string;
let context: BrowserContext | undefined;
let page: Page;
let service: string;
let bridge: { stop(): Promise<void> } | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install -y chromium; .ci/run installs it)`,
    );
  }
  lab = new ControllerLab('dashboard');
  await lab.open();
  work = await mkdtemp(path.join(tmpdir(), 'sk-dashboard-'));
  root = path.join(work, 'nfs');
  await mkdir(root);
  stateFile = path.join(work, 'xfs.json');
  const tokenFile = path.join(work, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  // The stand-in xfs_quota runs as the controller's child and finds its state through the environment.
  Object.assign(process.env, { XFS_QUOTA_STATE: stateFile, XFS_QUOTA_LOG: path.join(work, 'xfs.log') });

  service = lab.name('web');
  await lab.apply(
    lab.resource('Network', lab.name('net'), { attachable: true }),
    lab.resource('Service', service, { ...SLEEPER, networks: [lab.name('net')] }),
    lab.resource('HomeFolders', lab.name('nfs'), {
      root,
      naming: 'plain',
      quota: { driver: 'xfs', default: '1Gi' },
    }),
    ...Object.entries(USERS).map(([name, { quota }]) => lab.resource('User', name, { quota })),
  );
  leader = await lab.start({
    serveHttp: true,
    leaderElection: true,
    env: { SWARMKEEPER_API_TOKEN_FILE: tokenFile, SWARMKEEPER_XFS_QUOTA: STAND_IN },
  });
  base = `http://127.0.0.1:${lab.address?.port ?? 0}`;

  await eventually(async () => {
    const status = await lab.store.readStatus('Service', service);
    expect([status?.sync, status?.health]).toEqual(['Synced', 'Healthy']);
  });
  await setUsage();
  bridge = await feedEventsIfNeeded();

  // A new, empty profile each run, removed with the work folder.
  context = await chromium.launchPersistentContext(await mkdtemp(path.join(work, 'chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1360, height: 900 },
    timezoneId: 'UTC',
  });
  page = context.pages()[0] ?? (await context.newPage());
  await mkdir(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await bridge?.stop();
  await lab?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Writes each user's use into the stand-in's state and waits until the controller reports it. */
async function setUsage(): Promise<void> {
  const folders = Object.keys(USERS).map((name) => path.join(root, name));
  const state = await eventually(async () => {
    const parsed = JSON.parse(await readFile(stateFile, 'utf8')) as Record<string, { path?: string }>;
    expect(Object.values(parsed).map((p) => p.path)).toEqual(expect.arrayContaining(folders));
    return parsed;
  });
  for (const entry of Object.values(state) as { path?: string; used?: number }[]) {
    const user = Object.entries(USERS).find(([name]) => entry.path === path.join(root, name));
    if (user) entry.used = user[1].used;
  }
  await writeFile(stateFile, JSON.stringify(state));
  await eventually(async () => {
    for (const [name, { used }] of Object.entries(USERS)) {
      expect((await lab.store.readStatus('User', name))?.usedBytes).toBe(used);
    }
  });
}

/**
 * `swarmkeeper run` feeds `<prefix>:events` from its log (createControllerLogging); ControllerLab
 * builds its own logger, so unless it does that too, this hands the lab's log lines to the same
 * EventSink, appending to the real stream as the controller would.
 */
async function feedEventsIfNeeded(): Promise<{ stop(): Promise<void> } | undefined> {
  // The service's `created` is logged by now: if the stream is still empty, nobody writes it.
  if ((await lab.redis.xlen(new KeySpace(lab.prefix).events)) > 0) return undefined;
  const stream: RedisEventStream = await openEventStream(lab.config(), 'controller');
  const sink = new EventSink({ flushDelayMs: 10 });
  sink.attach(stream);
  let forwarded = 0;
  const forward = (): void => {
    while (forwarded < lab.logs.length) sink.write(`${JSON.stringify(lab.logs[forwarded++])}\n`);
  };
  forward();
  const timer = setInterval(forward, 50);
  return {
    async stop() {
      clearInterval(timer);
      await sink.close(1_000);
      await stream.close();
    },
  };
}

const row = (key: string) => page.locator(`#resources tr[data-key="${key}"]`);
const timelineItems = (name: string, msg: string) =>
  page.locator(`#timeline li[data-kind="Service"][data-name="${name}"][data-msg="${msg}"]`);
const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, name), fullPage: true });

/** playwright-core has no web-first assertions: these read once and let `expect.poll` retry. */
const attribute = (locator: Locator, name: string) =>
  locator.getAttribute(name, { timeout: 1_000 }).catch(() => null);
const text = (locator: Locator) => locator.textContent({ timeout: 1_000 }).catch(() => null);
const poll = <T>(read: () => Promise<T>, timeout = 10_000) => expect.poll(read, { timeout, interval: 100 });

/** Clients blocked in XREAD: each open page's timeline holds one. */
async function blockedReaders(): Promise<number> {
  const clients = (await lab.redis.client('LIST')) as string;
  return clients.split('\n').filter((line) => / cmd=xread/.test(line)).length;
}

describe('status page', () => {
  it('asks for the token, takes it once as ?token= and keeps only a signed HttpOnly cookie', async () => {
    const anonymous = await page.goto(`${base}/`);
    expect(anonymous?.status()).toBe(401);
    expect(await text(page.locator('main.login'))).toContain('needs the API token');
    expect(await page.content()).not.toContain(service);

    const wrong = await page.goto(`${base}/?token=not-the-token`);
    expect(wrong?.status()).toBe(401);
    expect(await text(page.locator('main.login'))).toContain('not valid');
    expect(await page.content()).not.toContain('not-the-token');

    const signedIn = await page.goto(`${base}/?token=${TOKEN}`);
    expect(signedIn?.status()).toBe(200);
    expect(page.url()).toBe(`${base}/`);
    expect(signedIn?.headers()['content-security-policy']).toContain("script-src 'self'");
    const [cookie, ...others] = await context!.cookies(base);
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({ name: 'swarmkeeper_dashboard', httpOnly: true, sameSite: 'Strict' });
    expect(cookie?.value).not.toContain(TOKEN);
    expect(await page.content()).not.toContain(TOKEN);

    // The cookie opens the page only; the JSON behind it refuses a request without one.
    const bare = await fetch(`${base}/status.json`);
    expect(bare.status).toBe(401);
    const bearer = await fetch(`${base}/status.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(bearer.status).toBe(200);
  });

  it('shows every resource, the home folders against their quotas, and who leads', async () => {
    await poll(() => attribute(row(`Service/${service}`), 'data-sync')).toBe('Synced');
    await poll(() => attribute(row(`Service/${service}`), 'data-health')).toBe('Healthy');
    await poll(() => attribute(row(`Network/${lab.name('net')}`), 'data-tone')).toBe('ok');
    await poll(() => attribute(row('User/alice'), 'data-sync')).toBe('Synced');

    const leaderBox = page.locator('#leader');
    await poll(() => text(leaderBox)).toContain(leader.elector?.identity ?? 'no elector');
    await poll(() => text(leaderBox.locator('.role'))).toBe('leader');
    await poll(() => text(leaderBox.locator('[title="lease holder"]'))).toMatch(/^holds the lease/);

    const names = async () =>
      Promise.all((await page.locator('#users li.user').all()).map((li) => li.getAttribute('data-name')));
    expect(await names()).toEqual(['alice', 'carol', 'bob', 'dave']);
    await poll(() => text(page.locator('#users li[data-name="alice"] .user-pct'))).toBe('91%');
    await poll(() => attribute(page.locator('#users li[data-name="alice"]'), 'class')).toMatch(/level-high/);
    await poll(() => text(page.locator('#users li[data-name="dave"]'))).toContain('3 GiB used, no limit');
    await page.getByRole('button', { name: 'Name' }).click();
    expect(await names()).toEqual(['alice', 'bob', 'carol', 'dave']);
    await page.getByRole('button', { name: 'Most used' }).click();
    expect(await names()).toEqual(['dave', 'alice', 'carol', 'bob']);
    await page.getByRole('button', { name: 'Nearest limit' }).click();
    expect(await names()).toEqual(['alice', 'carol', 'bob', 'dave']);

    // The timeline starts with what the stream already holds: the service's creation.
    await poll(() => timelineItems(service, 'created').first().isVisible()).toBe(true);
    await poll(() => attribute(page.locator('#live'), 'data-state')).toBe('live');
    await shot('01-converged.png');
  });

  it('shows a drift made by hand as it happens, then the repaired row turning green', async () => {
    const driftsBefore = await timelineItems(service, 'drift detected').count();
    const createdBefore = await timelineItems(service, 'created').count();
    const refreshedBefore = await page.locator('#updated').getAttribute('datetime');

    await docker('service', 'rm', service);

    await poll(() => timelineItems(service, 'drift detected').count(), 15_000).toBe(driftsBefore + 1);
    const drift = timelineItems(service, 'drift detected').first();
    await poll(() => attribute(drift, 'data-tone')).toBe('drift');
    await poll(() => text(drift)).toContain('action: create');
    await poll(() => timelineItems(service, 'created').count(), 15_000).toBe(createdBefore + 1);
    await shot('02-drift.png');

    await poll(() => attribute(page.locator('#updated'), 'datetime')).not.toBe(refreshedBefore ?? '');
    await poll(() => attribute(row(`Service/${service}`), 'data-sync'), 30_000).toBe('Synced');
    await poll(() => attribute(row(`Service/${service}`), 'data-health'), 30_000).toBe('Healthy');
    await poll(() => attribute(row(`Service/${service}`), 'data-tone')).toBe('ok');
    expect(await docker('service', 'inspect', '--format', '{{.Spec.Name}}', service)).toBe(service);
    await shot('03-repaired.png');
    expect(await page.content()).not.toContain(TOKEN);
  });

  it('ends the Redis follow when the page goes away', async () => {
    expect(await blockedReaders()).toBeGreaterThan(0);
    await page.goto('about:blank');
    await eventually(async () => expect(await blockedReaders()).toBe(0), { timeoutMs: 10_000 });
  });

  it('on a second replica, made public, shows itself following and names the leader without a token', async () => {
    await lab.start({
      serveHttp: true,
      leaderElection: true,
      env: { SWARMKEEPER_DASHBOARD_PUBLIC: 'true', SWARMKEEPER_XFS_QUOTA: STAND_IN },
    });
    const follower = `http://127.0.0.1:${lab.address?.port ?? 0}`;
    const answer = await page.goto(`${follower}/`);
    expect(answer?.status()).toBe(200);
    await poll(() => text(page.locator('#leader .role'))).toBe('follower');
    await poll(() => text(page.locator('#leader code[title="lease holder"]'))).toBe(
      leader.elector?.identity ?? '',
    );
    await poll(() => attribute(row(`Service/${service}`), 'data-tone')).toBe('ok');
    await shot('04-follower.png');
    await page.goto('about:blank');
  });
});
