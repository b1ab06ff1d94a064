/**
 * Local stand-in for the upstreams that speak OpenAI chat completions: OpenAI's API, Azure OpenAI and
 * OpenAI-compatible servers (vLLM and the like). A loopback HTTP server answering streamed chat completions in
 * the provider's real wire format, so the gateway's real client works against it without the provider.
 *
 *   openai        POST {base}/chat/completions with `Authorization: Bearer …` (any prefix path is a base, so one
 *                 server can stand in for several endpoints: `/sovereign-vllm/v1/chat/completions`)
 *   azure         POST /openai/deployments/{deployment}/chat/completions?api-version=… with an `api-key` header;
 *                 its quirks: a first chunk with `choices: []` and `prompt_filter_results`, `content_filter_results`
 *                 on every choice, and prompts it filters refused with a 400 whose code is `content_filter`;
 *                 GET /openai/deployments?api-version=2022-12-01 lists its `deployments` (the data-plane listing,
 *                 with the key), and Azure Resource Manager's account and deployments (with a bearer token):
 *                 GET /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.CognitiveServices/accounts/{a}[/deployments]
 *
 * Answers are deterministic: with tools offered (and the last message not a tool result) one call of the first
 * tool (or the one `tool_choice` names) with `{"text": <last user text>}`; after tool results "Tool results: " and
 * their contents joined by " | "; otherwise "Hello from the <flavor> stand-in." Usage: ceil(chars / 4) of the
 * messages' JSON and of the output, reported when `stream_options.include_usage` asks for it.
 *
 * Faults are injected by the caller (`inject`), one per coming request, in order: `throttle` (429), `unavailable`
 * (503), `hang` (no answer at all until the server closes), `filter_prompt` (Azure's 400 content_filter),
 * `filter_completion` (a partial answer ending with finish_reason content_filter), `fail_mid_stream` (the first
 * delta, then the connection is reset).
 * Every request is recorded (path, the credential it carried, parsed body) for tests to assert on: a stand-in only
 * ever sees stand-in credentials, or the made-up ones tests give as a customer's own (BYOK).
 *
 * Credentials in `refuse(...)` are answered as the real API answers an invalid key (401 `invalid_api_key`), and
 * those in `outOfQuota(...)` as an account without quota (429 `insufficient_quota`).
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Flavor = 'openai' | 'azure';
export type Fault = 'throttle' | 'unavailable' | 'hang' | 'filter_prompt' | 'filter_completion' | 'fail_mid_stream';

export interface RecordedChatRequest {
  path: string;
  /** The deployment (Azure) or the body's `model`. */
  model: string;
  /** Whether the request carried the flavor's credential header. */
  authenticated: boolean;
  /** That header's credential (the `api-key` value, or the bearer token). */
  credential: string | undefined;
  body: any;
  /** What the stand-in did with it: `answered`, the fault it played, `unauthenticated` (401) or `out_of_quota` (429). */
  outcome: 'answered' | 'unauthenticated' | 'out_of_quota' | Fault;
}

export interface OpenAIStandIn {
  url: string;
  flavor: Flavor;
  requests: RecordedChatRequest[];
  /** The next requests (one each, in order) play these faults. */
  inject(...faults: Fault[]): void;
  /** Requests with these credentials are refused (401), as with a revoked key. */
  refuse(...credentials: string[]): void;
  /** Requests with these credentials are refused as out of quota (429 insufficient_quota). */
  outOfQuota(...credentials: string[]): void;
  /** Resolves once a request is hanging (the `hang` fault), at once if one is. */
  hung(): Promise<void>;
  close(): Promise<void>;
}

const AZURE_PATH = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;
const SAFE = { hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' }, sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } };

const tokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: { type?: string; text?: string }) => (p.type === 'text' ? p.text ?? '' : '')).join('');
  return '';
}

function errorBody(status: number, message: string, code: string | null, type = 'invalid_request_error'): string {
  return JSON.stringify({ error: { message, type, param: null, code, ...(status === 400 && code === 'content_filter' ? { status } : {}) } });
}

/** The answer to a request: text deltas, or one tool call, and the finish reason. */
function answer(body: any, flavor: Flavor): { text: string[]; call?: { name: string; args: string }; finish: string } {
  const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
  const last = messages[messages.length - 1];
  if (last?.role === 'tool') {
    const results: string[] = [];
    for (let i = messages.length - 1; i >= 0 && messages[i].role === 'tool'; i--) results.unshift(textOf(messages[i].content));
    return { text: ['Tool results: ', results.join(' | ')], finish: 'stop' };
  }
  const tools: any[] = Array.isArray(body.tools) ? body.tools : [];
  if (tools.length && body.tool_choice !== 'none') {
    const name = body.tool_choice?.function?.name ?? tools[0].function?.name;
    const user = [...messages].reverse().find((m) => m.role === 'user');
    return { text: [], call: { name, args: JSON.stringify({ text: textOf(user?.content) }) }, finish: 'tool_calls' };
  }
  return { text: ['Hello ', 'from the ', `${flavor} `, 'stand-in.'], finish: 'stop' };
}

/** A deployment of the Azure stand-in's resource, as the data-plane listing shows it. */
export interface StandInDeployment {
  id: string;
  model: string;
  status?: string;
  /** Its deployment type, as the management plane shows it (default Standard). */
  sku?: string;
}

const ARM_ACCOUNT_PATH = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.CognitiveServices\/accounts\/([^/]+)(\/deployments)?$/;

/**
 * `credentialRequired: false`: a server started without an API key (vLLM's default), which takes any request.
 * `deployments`: what the Azure flavor's listing shows (default: gpt-4o, succeeded).
 */
export async function startOpenAIStandIn(opts: { flavor: Flavor; credentialRequired?: boolean; port?: number; host?: string; deployments?: StandInDeployment[]; location?: string }): Promise<OpenAIStandIn> {
  const deployments = opts.deployments ?? [{ id: 'gpt-4o', model: 'gpt-4o' }];
  const { flavor } = opts;
  const requests: RecordedChatRequest[] = [];
  const faults: Fault[] = [];
  const hanging = new Set<http.ServerResponse>();
  const refused = new Set<string>();
  const noQuota = new Set<string>();
  const hangWatchers: (() => void)[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://standin');
      const json = (status: number, body: string) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      };
      if (flavor === 'azure' && req.method === 'GET' && url.pathname === '/openai/deployments' && url.searchParams.get('api-version') === '2022-12-01') {
        if (!req.headers['api-key']) return json(401, errorBody(401, 'Access denied due to invalid subscription key or wrong API endpoint.', '401'));
        const data = deployments.map((d) => ({
          id: d.id, model: d.model, owner: 'organization-owner', status: d.status ?? 'succeeded', object: 'deployment',
          scale_settings: { scale_type: 'standard' }, created_at: 1_732_060_800, updated_at: 1_732_060_800,
        }));
        return json(200, JSON.stringify({ data, object: 'list' }));
      }
      const arm = flavor === 'azure' && req.method === 'GET' ? ARM_ACCOUNT_PATH.exec(url.pathname) : null;
      if (arm) {
        if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) return json(401, JSON.stringify({ error: { code: 'AuthenticationFailed', message: 'Authentication failed.' } }));
        if (url.searchParams.get('api-version') !== '2023-05-01') return json(400, JSON.stringify({ error: { code: 'InvalidApiVersionParameter', message: 'Unsupported api-version.' } }));
        if (!arm[2]) return json(200, JSON.stringify({ name: arm[1], kind: 'OpenAI', location: opts.location ?? 'canadaeast', properties: { endpoint: `https://${arm[1]}.openai.azure.com/` } }));
        return json(200, JSON.stringify({
          value: deployments.map((d) => ({
            name: d.id, sku: { name: d.sku ?? 'Standard', capacity: 10 },
            properties: { model: { format: 'OpenAI', name: d.model, version: '2024-11-20' }, provisioningState: d.status === 'failed' ? 'Failed' : 'Succeeded' },
          })),
        }));
      }
      const azure = flavor === 'azure' ? AZURE_PATH.exec(url.pathname) : null;
      if (req.method !== 'POST' || (flavor === 'azure' ? !azure : !url.pathname.endsWith('/chat/completions'))) {
        return json(404, errorBody(404, 'Resource not found', '404'));
      }
      if (azure && !url.searchParams.get('api-version')) return json(404, errorBody(404, 'Resource not found', '404'));
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return json(400, errorBody(400, 'The request body is not valid JSON.', null));
      }
      const credential = flavor === 'azure' ? (req.headers['api-key'] as string | undefined) : /^Bearer (\S+)/.exec(req.headers.authorization ?? '')?.[1];
      const authenticated = Boolean(credential);
      const unauthenticated = (!authenticated && opts.credentialRequired !== false) || (credential !== undefined && refused.has(credential));
      const quota = !unauthenticated && credential !== undefined && noQuota.has(credential);
      const fault = unauthenticated || quota ? undefined : faults.shift();
      requests.push({
        path: url.pathname, model: azure ? decodeURIComponent(azure[1]) : String(body.model), authenticated, credential, body,
        outcome: unauthenticated ? 'unauthenticated' : quota ? 'out_of_quota' : fault ?? 'answered',
      });
      if (unauthenticated) {
        return flavor === 'azure'
          ? json(401, errorBody(401, 'Access denied due to invalid subscription key or wrong API endpoint.', '401'))
          : json(401, errorBody(401, 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_api_key'));
      }
      if (quota) return json(429, errorBody(429, 'You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', 'insufficient_quota'));
      if (body.stream !== true) return json(400, errorBody(400, 'This stand-in serves streamed chat completions only.', null));
      switch (fault) {
        case 'throttle':
          res.setHeader('retry-after', '1');
          return json(429, errorBody(429, 'Rate limit reached for requests.', 'rate_limit_exceeded', 'requests'));
        case 'unavailable':
          return json(503, errorBody(503, 'The service is temporarily unable to process your request.', null, 'server_error'));
        case 'hang':
          hanging.add(res);
          res.once('close', () => hanging.delete(res));
          for (const w of hangWatchers.splice(0)) w();
          return;
        case 'filter_prompt':
          return json(400, errorBody(400, "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", 'content_filter'));
      }
      stream(res, body, fault);
    });
  });

  function stream(res: http.ServerResponse, body: any, fault: Fault | undefined): void {
    const filtered = fault === 'filter_completion';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const send = (chunk: object) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    const choice = (delta: object, finish: string | null = null) => send({
      id, object: 'chat.completion.chunk', created, model: body.model ?? 'deployment',
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null, ...(flavor === 'azure' ? { content_filter_results: finish ? {} : SAFE } : {}) }],
    });
    if (flavor === 'azure') {
      send({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: SAFE }] });
    }
    const a = answer(body, flavor);
    choice({ role: 'assistant', content: '' });
    let output = '';
    const text = filtered ? a.text.slice(0, 1) : a.text;
    for (const t of text) {
      output += t;
      choice({ content: t });
      // Reset once the delta has left, so the client has the first byte before the failure.
      if (fault === 'fail_mid_stream') return void res.write('', () => res.destroy());
    }
    if (a.call && !filtered) {
      const half = Math.ceil(a.call.args.length / 2);
      choice({ tool_calls: [{ index: 0, id: `call_${randomUUID().slice(0, 8)}`, type: 'function', function: { name: a.call.name, arguments: '' } }] });
      choice({ tool_calls: [{ index: 0, function: { arguments: a.call.args.slice(0, half) } }] });
      choice({ tool_calls: [{ index: 0, function: { arguments: a.call.args.slice(half) } }] });
      output += a.call.args;
    }
    choice({}, filtered ? 'content_filter' : a.finish);
    if (body.stream_options?.include_usage) {
      const prompt = tokens(JSON.stringify(body.messages ?? []));
      const completion = tokens(output);
      send({
        id, object: 'chat.completion.chunk', created, model: body.model ?? 'deployment', choices: [],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
      });
    }
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    flavor,
    requests,
    inject: (...f) => void faults.push(...f),
    refuse: (...c) => c.forEach((x) => refused.add(x)),
    outOfQuota: (...c) => c.forEach((x) => noQuota.add(x)),
    hung: () => (hanging.size ? Promise.resolve() : new Promise<void>((resolve) => hangWatchers.push(resolve))),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
