import builtIn from '../../../lambdas/catalog.json';
import { createGateway } from '../../../lambdas/app/gateway';
import type { HttpRequest, ResponseSink } from '../../../lambdas/app/http';
import type { GatewayPorts, Reservation } from '../../../lambdas/app/ports';
import { buildCatalog, type Route } from '../../../lambdas/core/catalog';
import type { ChatRequest, StreamEvent } from '../../../lambdas/core/chat';
import type { CustodyEvent } from '../../../lambdas/core/custody';
import { GatewayError } from '../../../lambdas/core/errors';
import type { Principal } from '../../../lambdas/core/principal';
import { concurrencyExceeded } from '../../../lambdas/core/rate-limits';
import { UpstreamError, type Provider } from '../../../lambdas/providers/provider';

/*
 * The request flow in-process, over fake ports: no server, no store, no provider SDK. What it proves is the flow's
 * own logic (admission before the upstream call, residency headers before the first byte, records after the
 * response); the integration tests run the same flow with the real pieces.
 */

const catalog = buildCatalog(builtIn, new Set(['bedrock']));
const SONNET = 'anthropic/claude-sonnet-4.5';
const LLAMA = 'meta/llama-3-70b';

const principal = (p: Partial<Principal> = {}): Principal => ({
  keyId: 'key_1', tier: 'global', tierPinned: false, allowedTiers: ['canadian_sovereign', 'managed_canadian_cloud', 'global'],
  maxSpendPerDay: null, timezone: 'America/Toronto', piiMode: 'substitute', requestsPerMinute: null, maxConcurrent: null, ...p,
});

/** An answer whose events come as the test releases them (a provider mid-generation), or a call never accepted. */
function heldAnswer(first: StreamEvent[]) {
  let release: (events: StreamEvent[] | Error) => void = () => undefined;
  const rest = new Promise<StreamEvent[] | Error>((resolve) => (release = resolve));
  let closed = false;
  const events = (async function* () {
    try {
      yield* first;
      const more = await rest;
      if (more instanceof Error) throw more;
      yield* more;
    } finally {
      closed = true;
    }
  })();
  return { events, release: (e: StreamEvent[] | Error) => release(e), closed: () => closed };
}

type Answer = StreamEvent[] | Error | AsyncIterable<StreamEvent> | Promise<never>;

/** A provider answering with the given events; it records what it was asked. */
function fakeProvider(answer: (route: Route) => Answer) {
  const calls: { route: Route; request: ChatRequest; maxTokens: number }[] = [];
  const provider: Provider = {
    async stream(route, request, maxTokens) {
      calls.push({ route, request, maxTokens });
      const events = answer(route);
      if (events instanceof Error) throw events;
      if (events instanceof Promise) return events;
      if (!Array.isArray(events)) return { requestSha256: 'a'.repeat(64), events };
      return { requestSha256: 'a'.repeat(64), events: (async function* () { yield* events; })() };
    },
    custodyHops: (route) => [`fake@${route.region}#${route.upstream_id}`],
  };
  return { provider, calls };
}

const answer: StreamEvent[] = [
  { type: 'text', delta: 'Hello ' },
  { type: 'text', delta: 'there.' },
  { type: 'finish', reason: 'stop' },
  { type: 'usage', usage: { input: 10, output: 2, cache_read: 0, cache_write: 0, reasoning: 0 } },
];

interface Timer { ms: number; fire: () => void; cancelled: boolean }

function setup(opts: { events?: (route: Route) => Answer; simulated?: boolean; settleFailures?: number; admission?: Promise<void> } = {}) {
  const { provider, calls } = fakeProvider(opts.events ?? (() => answer));
  const order: string[] = [];
  const settled: { r: Reservation; e: CustodyEvent; basis: string }[] = [];
  const kept: Reservation[] = [];
  // Request limits: the flow's use of the port (the counting itself is the store's, test/integration/rate-limits).
  const inFlight = new Set<string>();
  const released: string[] = [];
  const releasedReservations: Reservation[] = [];
  // Timers the test fires itself (deadlines); short ones (settle backoff) fire at once.
  const timers: Timer[] = [];
  let settleFailures = opts.settleFailures ?? 0;
  const emitted: CustodyEvent[] = [];
  const logs: { message: string; fields: Record<string, unknown> }[] = [];
  let clock = Date.UTC(2026, 11, 4, 15, 0, 0);
  const ports: GatewayPorts = {
    catalog,
    providers: new Map([['bedrock', {
      ...provider,
      stream: (...args) => (order.push('upstream'), provider.stream(...args)),
    }]]),
    spend: {
      async reserve(p, requestId, amount, model, tier) {
        order.push(`reserve:${amount}`);
        if (p.maxSpendPerDay !== null && amount > p.maxSpendPerDay) {
          throw new GatewayError(429, 'cap', 'insufficient_quota', 'daily_spend_cap_exceeded');
        }
        return { keyId: p.keyId, day: '2026-12-04', requestId, amount, model, tier, reserved: true };
      },
      unreserved: (p, requestId, model, tier) => ({ keyId: p.keyId, day: '2026-12-04', requestId, amount: 0, model, tier, reserved: false }),
      async settle(r, e, basis) {
        if (settleFailures-- > 0) throw new Error('store unavailable');
        settled.push({ r, e, basis });
      },
      async release(r) {
        releasedReservations.push(r);
      },
      async keep(r) {
        kept.push(r);
      },
    },
    limits: {
      async admit(p, requestId) {
        order.push('admit');
        await opts.admission; // the store's answer, when the test lets it come
        const { maxConcurrent } = p;
        if (maxConcurrent !== null && inFlight.size >= maxConcurrent) throw concurrencyExceeded(maxConcurrent);
        inFlight.add(requestId);
        return { keyId: p.keyId, requestId };
      },
      async release(lease) {
        inFlight.delete(lease.requestId);
        released.push(lease.requestId);
      },
    },
    custody: {
      async emit(e) {
        emitted.push(e);
      },
      receipt: async (requestId, keyId) => (requestId === 'req-known' && keyId === 'key_1' ? { object: 'custody.receipt', request_id: requestId } : null),
    },
    byok: { open: () => Promise.reject(new Error('no key here brings its own credential')), used: async () => undefined },
    metrics: { request: () => undefined },
    log: { info: (message, fields) => logs.push({ message, fields }), error: (message, fields) => logs.push({ message, fields }) },
    now: () => (clock += 5),
    schedule(ms, fire) {
      const timer = { ms, fire, cancelled: false };
      if (ms < 10_000) queueMicrotask(fire);
      else timers.push(timer);
      return () => (timer.cancelled = true);
    },
    deadlines: { acceptMs: 60_000, totalMs: 780_000 },
    gatewayRegion: 'ca-central-1',
    simulatedProviders: new Set(opts.simulated ? ['bedrock'] : []),
  };
  /** Fires the pending timer set for about `ms` (the deadline at 780 s is set a few clock ticks short of it). */
  const fire = (ms: number) => {
    const timer = timers.find((t) => !t.cancelled && Math.abs(t.ms - ms) < 1000);
    if (!timer) throw new Error(`no pending timer of ${ms} ms`);
    timer.cancelled = true;
    timer.fire();
  };
  const pending = () => timers.filter((t) => !t.cancelled).map((t) => t.ms);
  return { gateway: createGateway(ports), calls, order, settled, kept, emitted, logs, fire, pending, inFlight, released, releasedReservations };
}

/** A response sink that keeps what the flow wrote. */
function recorder() {
  const out = { status: 0, headers: {} as Record<string, string>, body: '', ended: false, closeListeners: [] as (() => void)[] };
  const sink: ResponseSink = {
    start(status, headers) {
      out.status = status;
      out.headers = headers;
    },
    write(chunk) {
      out.body += chunk;
    },
    end() {
      out.ended = true;
    },
    onClose(listener) {
      out.closeListeners.push(listener);
    },
  };
  return { sink, out };
}

const request = (body: object | string, p: Principal | null = principal(), path = '/v1/chat/completions', method = 'POST'): HttpRequest => ({
  method, path, headers: {}, query: {}, requestId: 'req-1', principal: p, body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('the chat flow over its ports', () => {
  test('a non-streamed answer: body, residency headers, and one settle and custody event after it', async () => {
    const { gateway, settled, emitted, calls } = setup();
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: 'Hi' }] }), sink);
    expect(out.status).toBe(200);
    expect(JSON.parse(out.body).choices[0].message.content).toBe('Hello there.');
    expect(out.headers['x-ni-resolved-jurisdiction']).toBe('US');
    expect(out.headers['x-ni-custody-path']).toBe('ni-gateway@ca-central-1 > fake@ca-central-1#us.anthropic.claude-sonnet-4-5-20250929-v1:0');
    expect(calls).toHaveLength(1);
    // No max_tokens in the request: the model's default output budget, not its maximum.
    expect(calls[0].maxTokens).toBe(catalog.byId.get(SONNET)!.default_max_tokens);
    expect(settled).toHaveLength(1);
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({ status: 'ok', model: SONNET, jurisdiction: 'US', usage: { input_tokens: 10, output_tokens: 2 }, request_sha256: 'a'.repeat(64) });
    expect(emitted[0].cost_micro_cad).toBeGreaterThan(0);
    expect(settled[0].e).toBe(emitted[0]);
  });

  test('a capped key reserves before the upstream call; a refused reservation never reaches the provider', async () => {
    const capped = setup();
    await capped.gateway.handleV1(request({ model: SONNET, max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] }, principal({ maxSpendPerDay: 10_000_000 })), recorder().sink);
    expect(capped.order).toEqual([expect.stringMatching(/^reserve:\d+$/), 'upstream']);

    const refused = setup();
    const { sink, out } = recorder();
    await refused.gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: 'Hi' }] }, principal({ maxSpendPerDay: 1 })), sink);
    expect(out.status).toBe(429);
    expect(JSON.parse(out.body).error.code).toBe('daily_spend_cap_exceeded');
    expect(refused.calls).toHaveLength(0);
    expect(refused.emitted[0]).toMatchObject({ status: 'error', http_status: 429, route: null, request_sha256: null });
  });

  test('a streamed answer carries the residency headers at start and ends with [DONE]; simulated providers say so', async () => {
    const { gateway } = setup({ simulated: true });
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: LLAMA, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hi' }] }, principal({ tier: 'managed_canadian_cloud' })), sink);
    expect(out.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(out.headers['x-ni-resolved-jurisdiction']).toBe('SIMULATED');
    expect(out.headers['x-ni-custody-path']).toBe('ni-gateway@ca-central-1 > bedrock-standin@loopback#meta.llama3-70b-instruct-v1:0');
    const events = out.body.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(JSON.parse(events.at(-2)!.slice(6)).usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 2 });
    expect(out.ended).toBe(true);
  });

  test('a stream that breaks after the first byte ends with an error event, never [DONE], and is recorded as an error', async () => {
    const { gateway, emitted } = setup({ events: () => [{ type: 'text', delta: 'partial' }] });
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, stream: true, messages: [{ role: 'user', content: 'Hi' }] }), sink);
    expect(out.body).not.toContain('[DONE]');
    expect(out.body).toContain('"code":"upstream_stream_error"');
    expect(emitted[0]).toMatchObject({ status: 'error', http_status: 200, error_code: 'upstream_stream_error' });
  });

  test('retries stay inside the first route\'s jurisdiction and a spent retry budget is a 429 with retry-after', async () => {
    const { gateway, calls } = setup({ events: () => new UpstreamError('throttled') });
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: 'Hi' }] }), sink);
    expect(out.status).toBe(429);
    expect(out.headers['retry-after']).toBe('2');
    expect(calls.length).toBe(3);
    expect(new Set(calls.map((c) => c.route.jurisdiction))).toEqual(new Set(['US']));
  });

  test('personal data is substituted before the provider and restored in the answer', async () => {
    const { gateway, calls } = setup({ events: () => [{ type: 'text', delta: 'Noted: [EMAIL_1].' }, { type: 'finish', reason: 'stop' }] });
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: 'Write to jane.tremblay@northwind.ca' }] }), sink);
    expect(JSON.stringify(calls[0].request)).not.toContain('jane.tremblay@northwind.ca');
    expect(JSON.parse(out.body).choices[0].message.content).toBe('Noted: jane.tremblay@northwind.ca.');
    expect(out.headers['x-ni-pii-substitutions']).toBe('1');
  });

  test('an unknown model is a 400 listing the available models; nothing is reserved or called', async () => {
    const { gateway, calls, order } = setup();
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: 'nope/x', messages: [{ role: 'user', content: 'Hi' }] }), sink);
    const body = JSON.parse(out.body);
    expect(out.status).toBe(400);
    expect(body.error.message).toMatch(/^Model 'nope\/x' is not deployed/);
    expect(body.error.available_models).toContain(SONNET);
    expect(calls).toHaveLength(0);
    expect(order).toEqual([]);
  });
});

/** Lets the flow run until it waits on something the test controls. */
const settleDown = async () => {
  for (let i = 0; i < 20; i++) await new Promise((done) => setImmediate(done));
};

describe('deadlines, broken streams and failed settles: what was generated is always billed', () => {
  const capped = principal({ maxSpendPerDay: 10_000_000 });
  const ask = (stream: boolean) => request({ model: SONNET, stream, max_tokens: 1000, messages: [{ role: 'user', content: 'Hi' }] }, capped);

  test('a stream still generating at the deadline ends with an error event and is settled, metered and recorded', async () => {
    const held = heldAnswer([{ type: 'text', delta: 'The first part of a very long answer' }]);
    const t = setup({ events: () => held.events });
    const { sink, out } = recorder();
    const handled = t.gateway.handleV1(ask(true), sink);
    await settleDown();
    expect(out.body).toContain('The first part');
    expect(t.settled).toHaveLength(0);
    t.fire(780_000);
    await handled;
    const events = out.body.split('\n\n').filter(Boolean);
    expect(JSON.parse(events.at(-1)!.slice(6)).error).toMatchObject({ type: 'api_error', code: 'upstream_deadline_exceeded' });
    expect(out.body).not.toContain('[DONE]');
    expect(out.ended).toBe(true);
    expect(t.emitted).toHaveLength(1);
    expect(t.emitted[0]).toMatchObject({ status: 'error', error_code: 'upstream_deadline_exceeded' });
    expect(t.emitted[0].usage.output_tokens).toBe(Math.ceil('The first part of a very long answer'.length / 3));
    expect(t.emitted[0].cost_micro_cad).toBeGreaterThan(0);
    expect(t.settled).toEqual([expect.objectContaining({ basis: 'estimated', e: t.emitted[0] })]);
    // Later events are not relayed, and no timer outlives the request.
    held.release([{ type: 'text', delta: 'more' }]);
    await settleDown();
    expect(out.body).not.toContain('more');
    expect(t.pending()).toEqual([]);
  });

  test('a non-streamed answer at the deadline is a 504 in OpenAI\'s shape, billed for what was generated', async () => {
    const held = heldAnswer([{ type: 'text', delta: 'partial answer' }]);
    const t = setup({ events: () => held.events });
    const { sink, out } = recorder();
    const handled = t.gateway.handleV1(ask(false), sink);
    await settleDown();
    t.fire(780_000);
    await handled;
    expect(out.status).toBe(504);
    expect(JSON.parse(out.body).error.code).toBe('upstream_deadline_exceeded');
    expect(t.settled[0]).toMatchObject({ basis: 'estimated' });
    expect(t.settled[0].e.cost_micro_cad).toBeGreaterThan(0);
  });

  test('a provider that never accepts the call: 504 upstream_timeout at the first-byte timeout, and the reservation released', async () => {
    const t = setup({ events: () => new Promise<never>(() => undefined) });
    const { sink, out } = recorder();
    const handled = t.gateway.handleV1(ask(false), sink);
    await settleDown();
    t.fire(60_000);
    await handled;
    expect(out.status).toBe(504);
    expect(JSON.parse(out.body).error.code).toBe('upstream_timeout');
    expect(t.settled).toEqual([expect.objectContaining({ r: expect.objectContaining({ reserved: true }) })]);
    expect(t.settled[0].e.cost_micro_cad).toBe(0);
    expect(t.pending()).toEqual([]);
  });

  test('a stream that breaks before its usage metadata bills an estimate of what was relayed, and says so', async () => {
    const held = heldAnswer([{ type: 'text', delta: 'Twelve bytes' }, { type: 'tool_call', index: 0, id: 'c1', name: 'f' }, { type: 'tool_arguments', index: 0, delta: '{"a":1}' }]);
    const t = setup({ events: () => held.events });
    const { sink, out } = recorder();
    const handled = t.gateway.handleV1(ask(true), sink);
    await settleDown();
    held.release(new Error('connection reset'));
    await handled;
    expect(out.body).toContain('"code":"upstream_stream_error"');
    const e = t.emitted[0];
    expect(e.usage.output_tokens).toBe(Math.ceil(('Twelve bytes'.length + 'f'.length + '{"a":1}'.length) / 3));
    expect(e.usage.input_tokens).toBeGreaterThan(0);
    expect(e.cost_micro_cad).toBeGreaterThan(0);
    expect(t.settled[0].basis).toBe('estimated');
  });

  test('a complete answer is billed as the provider reported it', async () => {
    const t = setup();
    await t.gateway.handleV1(ask(false), recorder().sink);
    expect(t.settled[0].basis).toBe('reported');
    expect(t.settled[0].e.usage).toMatchObject({ input_tokens: 10, output_tokens: 2 });
  });

  test('a settle that fails is retried; one that keeps failing keeps the reservation instead of letting it expire', async () => {
    const once = setup({ settleFailures: 1 });
    await once.gateway.handleV1(ask(false), recorder().sink);
    expect(once.settled).toHaveLength(1);
    expect(once.kept).toHaveLength(0);

    const always = setup({ settleFailures: 3 });
    await always.gateway.handleV1(ask(false), recorder().sink);
    expect(always.settled).toHaveLength(0);
    expect(always.kept).toEqual([expect.objectContaining({ requestId: 'req-1', reserved: true })]);
    expect(always.logs.map((l) => l.message)).toContain('usage not recorded; its reservation is kept');
  });
});

describe('per-key request limits in the flow', () => {
  test('a key without request limits is not counted: nothing waits for the store before the upstream call', async () => {
    const t = setup();
    await t.gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: 'Hi' }] }), recorder().sink);
    expect(t.order).toEqual(['upstream']);
    const limited = setup();
    await limited.gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: 'Hi' }] }, principal({ requestsPerMinute: 60 })), recorder().sink);
    expect(limited.order).toEqual(['admit', 'upstream']);
  });

  test('a key at its limit gets a 429 in OpenAI\'s shape with retry-after and nothing called; its slot frees when the response ends', async () => {
    const held = heldAnswer([{ type: 'text', delta: 'working' }]);
    const t = setup({ events: () => held.events });
    const one = principal({ maxConcurrent: 1, maxSpendPerDay: 10_000_000 });
    const first = recorder();
    const running = t.gateway.handleV1({ ...request({ model: SONNET, stream: true, messages: [{ role: 'user', content: 'Hi' }] }, one), requestId: 'req-a' }, first.sink);
    await settleDown();
    expect(t.inFlight).toEqual(new Set(['req-a']));

    const second = recorder();
    await t.gateway.handleV1({ ...request({ model: SONNET, messages: [{ role: 'user', content: 'Hi' }] }, one), requestId: 'req-b' }, second.sink);
    expect(second.out.status).toBe(429);
    expect(second.out.headers['retry-after']).toBe('1');
    expect(JSON.parse(second.out.body).error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_concurrent_requests', param: null });
    expect(t.calls).toHaveLength(1);
    // Its reservation, made beside the limits' write, is given back whole and nothing is settled for it.
    expect(t.releasedReservations).toEqual([expect.objectContaining({ requestId: 'req-b', reserved: true })]);
    expect(t.settled).toHaveLength(0);

    held.release([{ type: 'finish', reason: 'stop' }]);
    await running;
    expect(first.out.ended).toBe(true);
    expect(t.released).toEqual(['req-a']);
    expect(t.inFlight.size).toBe(0);
  });
});

describe('the limits\' write and the spend reservation: awaited together, each undone when the other refuses', () => {
  const hi = (p: Principal) => request({ model: SONNET, max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] }, p);

  test('a capped key with limits reserves while the limits\' write is out, and nothing goes upstream before both are settled', async () => {
    let answer = () => undefined as void;
    const t = setup({ admission: new Promise<void>((resolve) => (answer = resolve)) });
    const { sink, out } = recorder();
    const handled = t.gateway.handleV1(hi(principal({ maxConcurrent: 5, maxSpendPerDay: 10_000_000 })), sink);
    await settleDown();
    expect(t.order).toEqual(['admit', expect.stringMatching(/^reserve:\d+$/)]);
    expect(t.calls).toHaveLength(0);
    answer();
    await handled;
    expect(out.status).toBe(200);
    expect(t.order.at(-1)).toBe('upstream');
    expect(t.released).toEqual(['req-1']);
  });

  test('refused by its limits: the reservation is given back unsettled and the provider never called', async () => {
    const t = setup();
    t.inFlight.add('req-other');
    const { sink, out } = recorder();
    await t.gateway.handleV1(hi(principal({ maxConcurrent: 1, maxSpendPerDay: 10_000_000 })), sink);
    expect(out.status).toBe(429);
    expect(JSON.parse(out.body).error.code).toBe('too_many_concurrent_requests');
    expect(t.calls).toHaveLength(0);
    expect(t.releasedReservations).toEqual([expect.objectContaining({ requestId: 'req-1', reserved: true })]);
    expect(t.settled).toHaveLength(0);
    expect(t.released).toEqual([]);
  });

  test('refused by its cap: the slot is freed and the provider never called', async () => {
    const t = setup();
    const { sink, out } = recorder();
    await t.gateway.handleV1(hi(principal({ maxConcurrent: 1, maxSpendPerDay: 1 })), sink);
    expect(out.status).toBe(429);
    expect(JSON.parse(out.body).error.code).toBe('daily_spend_cap_exceeded');
    expect(t.calls).toHaveLength(0);
    expect(t.released).toEqual(['req-1']);
    expect(t.inFlight.size).toBe(0);
    expect(t.releasedReservations).toEqual([]);
  });

  test('refused by both: the limits\' refusal is the answer, and neither holds anything to give back', async () => {
    const t = setup();
    t.inFlight.add('req-other');
    const { sink, out } = recorder();
    await t.gateway.handleV1(hi(principal({ maxConcurrent: 1, maxSpendPerDay: 1 })), sink);
    expect(JSON.parse(out.body).error.code).toBe('too_many_concurrent_requests');
    expect(t.calls).toHaveLength(0);
    expect(t.released).toEqual([]);
    expect(t.releasedReservations).toEqual([]);
  });

  test('a client error after the limits\' write went out (bad JSON, unknown model) still frees the slot', async () => {
    for (const body of ['{"model":', JSON.stringify({ model: 'nope/x', messages: [{ role: 'user', content: 'Hi' }] })]) {
      const t = setup();
      const { sink, out } = recorder();
      await t.gateway.handleV1(request(body, principal({ maxConcurrent: 1 })), sink);
      expect(out.status).toBe(400);
      expect(t.order).toEqual(['admit']);
      expect(t.released).toEqual(['req-1']);
      expect(t.inFlight.size).toBe(0);
    }
  });
});

describe('the privacy tier asked for in two places', () => {
  const asking = (bodyTier: string, headerTier: string) => ({
    ...request({ model: SONNET, ni: { privacy_tier: bodyTier }, messages: [{ role: 'user', content: 'Hi' }] }),
    headers: { 'x-ni-privacy-tier': headerTier },
  });

  test('a wider body tier does not widen the header\'s: the stricter one applies, whichever place it is in', async () => {
    for (const [bodyTier, headerTier] of [['global', 'managed_canadian_cloud'], ['managed_canadian_cloud', 'global']]) {
      const { gateway, calls } = setup();
      const { sink, out } = recorder();
      await gateway.handleV1(asking(bodyTier, headerTier), sink);
      // Sonnet has only US/global routes: under managed_canadian_cloud it is not available.
      expect(out.status).toBe(400);
      expect(out.headers['x-ni-privacy-tier']).toBe('managed_canadian_cloud');
      expect(JSON.parse(out.body).error.code).toBe('model_not_available_in_tier');
      expect(calls).toHaveLength(0);
    }
  });

  test('each place must name a tier the key allows', async () => {
    const { gateway } = setup();
    const { sink, out } = recorder();
    const narrowKey = principal({ tier: 'managed_canadian_cloud', allowedTiers: ['canadian_sovereign', 'managed_canadian_cloud'] });
    await gateway.handleV1({ ...asking('managed_canadian_cloud', 'global'), principal: narrowKey }, sink);
    expect(out.status).toBe(403);
    expect(JSON.parse(out.body).error.code).toBe('privacy_tier_not_allowed');
  });
});

describe('the other /v1 routes', () => {
  test('models are listed for the tier the key runs under', async () => {
    const { gateway } = setup();
    const { sink, out } = recorder();
    await gateway.handleV1(request('', principal({ tier: 'managed_canadian_cloud' }), '/v1/models', 'GET'), sink);
    const ids = JSON.parse(out.body).data.map((m: { id: string }) => m.id);
    expect(ids).toContain(LLAMA);
    expect(ids).not.toContain(SONNET);
  });

  test('receipts: the owner gets theirs; malformed percent-encoding is a 400, not a 500', async () => {
    const { gateway } = setup();
    const found = recorder();
    await gateway.handleV1(request('', principal(), '/v1/custody/req-known', 'GET'), found.sink);
    expect(found.out.status).toBe(200);
    const other = recorder();
    await gateway.handleV1(request('', principal({ keyId: 'key_2' }), '/v1/custody/req-known', 'GET'), other.sink);
    expect(other.out.status).toBe(404);
    const malformed = recorder();
    await gateway.handleV1(request('', principal(), '/v1/custody/%E0%A4%A', 'GET'), malformed.sink);
    expect(malformed.out.status).toBe(400);
    expect(JSON.parse(malformed.out.body).error.code).toBe('invalid_request_id');
  });

  test('no principal is a 401 in OpenAI\'s shape', async () => {
    const { gateway } = setup();
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, messages: [] }, null), sink);
    expect(out.status).toBe(401);
    expect(JSON.parse(out.body).error.code).toBe('invalid_api_key');
  });
});

describe('request limits: adversarial bodies are refused with a 400 before any work is done for them', () => {
  const user = (n: number) => Array.from({ length: n }, () => ({ role: 'user', content: 'a' }));

  test('20,000 one-character user messages: 400 too_many_messages, nothing reserved, scanned or called', async () => {
    const { gateway, calls, order } = setup();
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, messages: user(20_000) }, principal({ maxSpendPerDay: 10_000_000 })), sink);
    expect(out.status).toBe(400);
    expect(JSON.parse(out.body).error).toMatchObject({ type: 'invalid_request_error', code: 'too_many_messages', param: 'messages' });
    expect(order).toEqual([]);
    expect(calls).toHaveLength(0);
  });

  test('10,000 of them, the limit, are answered: one merged turn of 10,000 parts reaches the provider', async () => {
    const { gateway, calls } = setup();
    const { sink, out } = recorder();
    await gateway.handleV1(request({ model: SONNET, messages: user(10_000) }), sink);
    expect(out.status).toBe(200);
    expect(calls[0].request.messages).toHaveLength(1);
    expect(calls[0].request.messages[0].content).toHaveLength(10_000);
  });

  test('too many content parts and too many tools are 400s naming the limit', async () => {
    const parts = setup();
    const many = recorder();
    await parts.gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: Array.from({ length: 10_001 }, () => ({ type: 'text', text: 'a' })) }] }), many.sink);
    expect(many.out.status).toBe(400);
    expect(JSON.parse(many.out.body).error.code).toBe('too_many_content_parts');
    const nested = recorder();
    const result = { type: 'tool_result', tool_use_id: 'c1', content: Array.from({ length: 10_001 }, () => ({ type: 'text', text: 'a' })) };
    await parts.gateway.handleV1(request({ model: SONNET, messages: [{ role: 'user', content: [result] }] }), nested.sink);
    expect(JSON.parse(nested.out.body).error.code).toBe('too_many_content_parts');

    const tools = setup();
    const offered = recorder();
    const tool = (i: number) => ({ type: 'function', function: { name: `t${i}`, parameters: { type: 'object' } } });
    await tools.gateway.handleV1(request({ model: SONNET, messages: user(1), tools: Array.from({ length: 129 }, (_, i) => tool(i)) }), offered.sink);
    expect(offered.out.status).toBe(400);
    expect(JSON.parse(offered.out.body).error).toMatchObject({ code: 'too_many_tools', param: 'tools' });
    expect(tools.calls).toHaveLength(0);
  });

  test('tool-call arguments or a tool schema nested 100,000 deep are a 400 request_too_deep, not a 500', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const args = setup();
    const inArgs = recorder();
    await args.gateway.handleV1(request({ model: SONNET, messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: `{"a":${deep}}` } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
    ] }), inArgs.sink);
    expect(inArgs.out.status).toBe(400);
    expect(JSON.parse(inArgs.out.body).error.code).toBe('request_too_deep');

    const schema = setup();
    const inSchema = recorder();
    const body = `{"model":"${SONNET}","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","x":${deep}}}}]}`;
    await schema.gateway.handleV1(request(body), inSchema.sink);
    expect(inSchema.out.status).toBe(400);
    expect(JSON.parse(inSchema.out.body).error.code).toBe('request_too_deep');
    expect(schema.calls).toHaveLength(0);
  });
});
