import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import OpenAI from 'openai';
import { LOCAL_BUILD_ROOT, START_FLAGS } from '../../local/build';
import { fetchOpenAI } from '../support/openapi';

/*
 * The Quickstart's `npm start`, as a new user runs it: local/start.js builds the local runtime into its bundle
 * and runs it; the banner's base URL and development key then serve the official openai client, and the
 * custody receipt shows the ledger writer (its own bundle, on the store's thread) recorded the request.
 */

const ROOT = join(__dirname, '..', '..');
let proc: ChildProcess;
let dataDir: string;
let banner = '';

/** `npm start` in `env`, once its banner is printed: the process and what it printed. */
async function npmStart(env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; banner: string }> {
  const child = spawn(process.execPath, [...START_FLAGS, join(ROOT, 'local', 'start.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (/Development API key/.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });
  return { proc: child, banner: out };
}

beforeAll(async () => {
  dataDir = join(mkdtempSync(join(tmpdir(), 'ni-start-')), 'data'); // created by npm start
  // No AWS credentials, no provider secrets, no endpoint overrides: the stand-ins serve, as on a fresh machine.
  ({ proc, banner } = await npmStart({ PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', NI_DATA_DIR: dataDir, NI_LOG_LEVEL: 'ERROR' }));
}, 60_000);

afterAll(async () => {
  if (proc.exitCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }
  rmSync(dirname(dataDir), { recursive: true, force: true });
});

test('the banner\'s base URL and key serve a streamed completion, recorded in the ledger', async () => {
  expect(existsSync(join(LOCAL_BUILD_ROOT, 'start', 'main.js'))).toBe(true);
  expect(existsSync(join(LOCAL_BUILD_ROOT, 'start', 'store-thread-entry.js'))).toBe(true);
  const baseURL = /OpenAI base URL:\s+(\S+)/.exec(banner)![1];
  const apiKey = /(ni_live_[A-Za-z0-9]+)/.exec(banner)![1];
  for (const provider of ['bedrock', 'azure_openai', 'openai', 'openai_compatible:sovereign-vllm']) expect(banner).toMatch(new RegExp(`${provider}\\s+SIMULATED`));

  const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0, fetch: fetchOpenAI });
  const { data: stream, response } = await openai.chat.completions.create({ model: 'meta/llama-3-70b', stream: true, messages: [{ role: 'user', content: 'Say hello.' }] }).withResponse();
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  expect(text).toBe('Hello from the Bedrock stand-in.');
  const id = response.headers.get('x-ni-request-id')!;

  // Recorded after the response (its group-commit window, then the bus's delivery) in another process, which
  // says nothing when it is done: asked again until it is there, bounded by this test's timeout only.
  let receipt = await fetch(`${baseURL}/custody/${id}`, { headers: { authorization: `Bearer ${apiKey}` } });
  while (receipt.status === 404) {
    await new Promise((done) => setTimeout(done, 100));
    receipt = await fetch(`${baseURL}/custody/${id}`, { headers: { authorization: `Bearer ${apiKey}` } });
  }
  expect(receipt.status).toBe(200);
  expect(await receipt.json()).toMatchObject({ request_id: id, entry: { seq: 1, event: { status: 'ok', model: 'meta/llama-3-70b' } } });

  // NI_DATA_DIR is its owner's only: the directory 0700, every file in it 0600 (the anchored checkpoints 0400).
  const modes = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    const mode = (statSync(path).mode & 0o777).toString(8);
    return e.isDirectory() ? [`${relative(dataDir, path)}/ ${mode}`, ...modes(path)] : [`${relative(dataDir, path)} ${mode}`];
  });
  expect((statSync(dataDir).mode & 0o777).toString(8)).toBe('700');
  const all = modes(dataDir);
  expect(all).toContain('ledger-signing-key.pem 600');
  expect(all).toContain(`ledger-anchor/ 700`);
  expect(all.filter((m) => m.startsWith('ledger-anchor/') && m.endsWith('.json 400'))).toHaveLength(1);
  expect(all.filter((m) => !/ (700|600|400)$/.test(m))).toEqual([]);
}, 60_000);

test('a broken NI_CATALOG_FILE stops npm start with a message naming the bad entry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ni-start-catalog-'));
  try {
    const catalog = JSON.parse(readFileSync(join(ROOT, 'lambdas', 'catalog.json'), 'utf8')) as { models: { id: string; routes: { jurisdiction: string }[] }[] };
    catalog.models.find((m) => m.id === 'meta/llama-3-70b')!.routes[0].jurisdiction = 'MARS';
    writeFileSync(join(dir, 'catalog.json'), JSON.stringify(catalog));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', NI_DATA_DIR: join(dir, 'data'), NI_CATALOG_FILE: join(dir, 'catalog.json') };
    const child = spawn(process.execPath, [...START_FLAGS, join(ROOT, 'local', 'start.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(out).toMatch(/Failed to start: Invalid catalog: model "meta\/llama-3-70b": models\.\d+\.routes\.0\.jurisdiction/);
    expect(out).not.toMatch(/listening on/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('the banner says Vertex AI and Anthropic are simulated, and the development key (default tier) gets Gemini from the Vertex stand-in', async () => {
  expect(banner).toMatch(/vertex_ai\s+SIMULATED by a local stand-in at http:\/\/127\.0\.0\.1:\d+/);
  expect(banner).toMatch(/anthropic\s+SIMULATED by a local stand-in at http:\/\/127\.0\.0\.1:\d+/);
  const baseURL = /OpenAI base URL:\s+(\S+)/.exec(banner)![1];
  const apiKey = /(ni_live_[A-Za-z0-9]+)/.exec(banner)![1];
  const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0, fetch: fetchOpenAI });
  const { data, response } = await openai.chat.completions.create({ model: 'vertex_ai/gemini-2-5-flash', messages: [{ role: 'user', content: 'Say hello.' }] }).withResponse();
  expect(data.choices[0].message.content).toBe('Hello from the Vertex AI stand-in.');
  expect(response.headers.get('x-ni-resolved-jurisdiction')).toBe('SIMULATED');
});

test('with an Anthropic credential in the secrets file, the banner says Anthropic is real and Vertex AI still simulated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ni-start-secrets-'));
  try {
    writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ anthropic: 'sk-ant-not-a-real-key' }), { mode: 0o600 });
    const { proc: child, banner: out } = await npmStart({
      PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', NI_DATA_DIR: join(dir, 'data'), NI_LOG_LEVEL: 'ERROR', NI_PROVIDER_SECRETS_FILE: join(dir, 'secrets.json'),
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    expect(out).toMatch(/anthropic\s+REAL: https:\/\/api\.anthropic\.com/);
    expect(out).toMatch(/vertex_ai\s+SIMULATED/);
    expect(out).not.toContain('sk-ant-not-a-real-key');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
