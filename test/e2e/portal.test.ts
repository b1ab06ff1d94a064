import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { reloadConfig } from '../../lambdas/config';
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_REQUESTS_PER_MINUTE } from '../../lambdas/core/rate-limits';
import { PROJECT_ROOT } from '../../lib/esbuild';
import { startTestGateway, type TestGateway } from '../support/gateway';
import { buildTestPortal, portalAccount } from '../support/portal';

/*
 * The portal in a real browser (Debian's Chromium driven by playwright-core), against the local server: sign in →
 * create a key with a tier, a cap and a request limit → copy the secret → change its limits → the official openai
 * client calls the gateway with it → the request shows in Usage without a reload → its custody receipt → the
 * month's residency report → revoke → the key gets 401. Screenshots of each page at desktop and phone width are kept in test-results/portal/.
 */
jest.setTimeout(120_000);

const CHROMIUM = process.env.NI_CHROMIUM ?? '/usr/bin/chromium';
/** The page's globals, inside page.evaluate (the tests are type-checked without the DOM's types). */
type Page$ = { marker: number; navigator: { clipboard: { readText(): Promise<string> } }; document: { documentElement: { scrollWidth: number } } };

const SHOTS = join(PROJECT_ROOT, 'test-results', 'portal');
const MODEL = 'meta/llama-3-70b';

let gw: TestGateway;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No browser at ${CHROMIUM}: apt-get install -y chromium (or set NI_CHROMIUM)`);
  mkdirSync(SHOTS, { recursive: true });
  process.env.NI_KEY_CACHE_TTL_MS = '0'; // the revoked key's next request is refused
  await buildTestPortal();
  reloadConfig();
  gw = await startTestGateway();
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser?.close();
  await gw?.close();
  delete process.env.NI_KEY_CACHE_TTL_MS;
  reloadConfig();
});

/** Console errors (a CSP violation is one) and uncaught page errors: there must be none. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  return problems;
}

async function signIn(context: BrowserContext, name: string) {
  const { code } = await portalAccount(name);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(`${gw.url}/portal/#signin=${code}`);
  await page.getByRole('heading', { name: 'Keys' }).waitFor();
  return { page, problems };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

test('sign in, create a key, use it, see it live in Usage, open its receipt, download the report, revoke it', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw.url });
  const { page, problems } = await signIn(context, 'Acme');
  // The sign-in code left the address bar.
  expect(page.url()).not.toContain('signin=');
  await shot(page, 'desktop-keys-empty');

  await page.getByRole('button', { name: 'Create key' }).click();
  await page.getByLabel('Name').fill('laptop');
  await page.getByLabel('Default privacy tier').selectOption('managed_canadian_cloud');
  await page.getByLabel('Max spend per day, CAD').fill('5.00');
  await page.getByLabel('Requests in progress at once').fill('3');
  await shot(page, 'desktop-keys-create');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.getByRole('heading', { name: 'Your new key' }).waitFor();
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  const secret = await page.evaluate(() => (globalThis as unknown as Page$).navigator.clipboard.readText());
  expect(secret).toMatch(/^ni_live_[0-9A-Za-z]{43}$/);
  await shot(page, 'desktop-keys-secret');
  await page.getByRole('button', { name: 'Done' }).click();
  // Once the dialog is closed the secret is nowhere in the page.
  expect(await page.content()).not.toContain(secret);
  const row = page.getByRole('row', { name: /laptop/ });
  await row.getByText('$0.00 / $5.00').waitFor();
  await row.getByText('Managed Canadian cloud').waitFor();
  await row.getByText(`${DEFAULT_REQUESTS_PER_MINUTE}/min · 3 at once`).waitFor(); // the default per minute, the chosen number at once

  // Its limits changed from the page: no limit per minute, the other kept.
  await page.getByRole('button', { name: 'Limits of laptop' }).click();
  expect(await page.getByLabel('Requests in progress at once').inputValue()).toBe('3');
  await page.getByRole('checkbox', { name: 'No limit' }).first().check();
  await shot(page, 'desktop-keys-limits');
  await page.getByRole('button', { name: 'Save limits' }).click();
  await row.getByText('no limit per minute · 3 at once').waitFor();

  // The key's own Azure OpenAI credential (BYOK), Canada East standard deployments: allowed under its tier.
  const azureKey = 'azure-customer-key-0123456789WXYZ';
  await page.getByRole('button', { name: 'Own provider keys of laptop' }).click();
  await page.getByText('None set.').waitFor();
  await page.getByLabel('Provider', { exact: true }).selectOption('azure_openai');
  await page.getByLabel('API key').fill(azureKey);
  await page.getByLabel('Resource endpoint').fill('https://canadaeast.api.cognitive.microsoft.com');
  await page.getByLabel('Deployments, one per line').fill('openai/gpt-4o = gpt-4o');
  await page.getByRole('button', { name: 'Save credential' }).click();
  await page.getByText('…WXYZ').waitFor();
  expect(await page.getByLabel('API key').inputValue()).toBe(''); // the secret left the form
  await shot(page, 'desktop-keys-byok');
  await page.getByRole('button', { name: 'Close' }).click();
  await row.getByText('azure_openai …WXYZ').waitFor();
  expect(await page.content()).not.toContain(azureKey);

  // Usage is open before the request is made; the row must arrive without a reload.
  await page.getByRole('link', { name: 'Usage' }).click();
  await page.getByRole('heading', { name: 'Usage' }).waitFor();
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame() && !f.url().includes('#')) navigations += 1; });
  const marker = await page.evaluate(() => ((globalThis as unknown as Page$).marker = Math.random()));

  const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
  const { response } = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Bonjour, je suis Marie Tremblay' }] }).withResponse();
  const requestId = response.headers.get('x-request-id')!;
  const request = page.locator(`tr[data-request-id="${requestId}"]`);
  await request.waitFor({ timeout: 5_000 }); // the bound: within 5 s
  expect(await page.evaluate(() => (globalThis as unknown as Page$).marker)).toBe(marker);
  expect(navigations).toBe(0);
  await request.getByText(MODEL).waitFor();
  await page.locator('.charts figure').first().waitFor();
  await shot(page, 'desktop-usage');

  await request.getByRole('link', { name: 'Receipt' }).click();
  await page.getByRole('heading', { name: 'Custody receipt' }).waitFor();
  await page.locator('ol.path code', { hasText: 'bedrock-standin@loopback' }).waitFor();
  await shot(page, 'desktop-receipt');

  await page.getByRole('link', { name: '← Usage' }).click();
  await page.getByRole('button', { name: 'Download CSV' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
  expect(download.suggestedFilename()).toMatch(/^residency-key_\w+-\d{4}-\d{2}\.csv$/);
  const csv = readFileSync((await download.path())!, 'utf8');
  expect(csv).toContain('report,requests,1');
  expect(csv).toContain('pii_substitutions,PERSON,1');
  expect(csv).toContain('chain,verified,true');

  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('heading', { name: 'Use it in Cursor' }).waitFor();
  await page.getByLabel('Privacy tier').selectOption('managed_canadian_cloud');
  await page.getByText(MODEL, { exact: true }).waitFor();
  await shot(page, 'desktop-models');

  await page.getByRole('link', { name: 'Keys' }).click();
  await page.getByRole('button', { name: 'Revoke laptop' }).click();
  await shot(page, 'desktop-keys-revoke');
  await page.getByRole('button', { name: 'Revoke key' }).click();
  await page.getByRole('row', { name: /laptop/ }).getByText('revoked').waitFor();
  await shot(page, 'desktop-keys-revoked');
  await expect(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 401 });

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).waitFor(); // the tab kept no token
  await shot(page, 'desktop-signed-out');

  expect(problems).toEqual([]);
  await context.close();
});

test('every page at phone width', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const { page, problems } = await signIn(context, 'Phone');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.getByLabel('Name').fill('phone');
  await page.getByLabel('Requests per minute').fill('60');
  await shot(page, 'phone-keys-create');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  const secret = await page.getByLabel('Secret').inputValue();
  await shot(page, 'phone-keys-secret');
  await page.getByRole('button', { name: 'Done' }).click();
  const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
  const { response } = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  await page.getByRole('row', { name: /phone/ }).getByText(`60/min · ${DEFAULT_MAX_CONCURRENT_REQUESTS} at once`).waitFor();
  await shot(page, 'phone-keys');
  await page.getByRole('link', { name: 'Usage' }).click();
  await page.locator(`tr[data-request-id="${response.headers.get('x-request-id')}"]`).waitFor();
  await shot(page, 'phone-usage');
  await page.getByRole('link', { name: 'Receipt' }).first().click();
  await page.getByRole('heading', { name: 'Custody receipt' }).waitFor();
  await page.getByText('Entry hash').waitFor();
  await shot(page, 'phone-receipt');
  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('heading', { name: 'Use it in Cursor' }).waitFor();
  await shot(page, 'phone-models');
  // Nothing wider than the screen: no sideways scrolling at phone width.
  expect(await page.evaluate(() => (globalThis as unknown as Page$).document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  expect(problems).toEqual([]);
  await context.close();
});
