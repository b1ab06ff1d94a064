import { createHash } from 'node:crypto';
import { byokPlan, modelsForKey, type ByokPlan } from '../core/byok';
import { assertCapable, resolveModel, type Model, type Route } from '../core/catalog';
import { hasImages, offersTools, type ChatRequest, type FinishReason, type StreamEvent } from '../core/chat';
import { ChunkFormatter, CompletionAccumulator, SSE_DONE, sseError } from '../core/completions';
import { custodyPath, formatCustodyPath, standInHop, type CustodyEvent, type ResolvedJurisdiction, type RouteAttempt } from '../core/custody';
import { asGatewayError, GatewayError } from '../core/errors';
import { parseChatRequest } from '../core/openai';
import { outputBudget } from '../core/output-budget';
import { estimatedUsage, reservationAmount } from '../core/billing';
import { costOf, ZERO_USAGE, type Prices, type TokenUsage, type UsageBasis } from '../core/pricing';
import { resolveTier, type Principal } from '../core/principal';
import { protect, RestoringSink, type Protection } from '../core/privacy';
import { AnswerReader, upstreamStreamError, type CompletionSink } from '../core/stream';
import { tierAllows, type Tier } from '../core/tiers';
import { UpstreamError, type Provider } from '../providers/provider';
import { callUpstream, type Attempted, type UpstreamOptions } from '../providers/upstream';
import { GATEWAY_ERRORS, MAX_REQUEST_BODY_BYTES, requestHeaders, sendJson, type HttpRequest, type ResponseSink } from './http';
import type { GatewayPorts, Lease, Reservation } from './ports';
import { hasRateLimits } from '../core/rate-limits';

/** What one request did, gathered as it runs and recorded after the client has its answer. */
class Outcome {
  readonly startedAt: number;
  firstByteAt: number | null = null;
  firstTokenAt: number | null = null;
  /** The catalog id once resolved; empty for requests refused before. */
  model = '';
  tier: Tier;
  route: Route | null = null;
  provider: Provider | null = null;
  readonly attempts: RouteAttempt[] = [];
  reservation: Reservation | null = null;
  /** The key's request limits' answer, when it has limits: started first, settled before the upstream call. */
  admission: Promise<PromiseSettledResult<Lease | null>> | null = null;
  /** A reservation taken for a request its limits refused: given back after the response, nothing recorded. */
  unusedReservation: Reservation | null = null;
  protection: Protection | null = null;
  requestSha256: string | null = null;
  readonly responseHash = createHash('sha256');
  usage: TokenUsage = ZERO_USAGE;
  usageBasis: UsageBasis = 'reported';
  /** UTF-8 size of the request body, and of the answer relayed so far (what an estimate is made from). */
  requestBytes = 0;
  relayedBytes = 0;
  cost = 0;
  throttles = 0;
  status: CustodyEvent['status'] = 'ok';
  httpStatus = 200;
  finishReason: FinishReason | null = null;
  error: GatewayError | null = null;
  /** The prices the gateway bills at: the list price, or the BYOK routing-only fee. */
  prices: Prices | null = null;
  /** Whose credential served the request, when the key brings its own for the model's provider. */
  credential: CustodyEvent['credential'] | null = null;
  /** With the customer's credential: the list prices, at which their provider's charge is estimated. */
  customerPrices: Prices | null = null;
  providerCost: number | null = null;

  constructor(private readonly ports: GatewayPorts, readonly requestId: string, readonly principal: Principal) {
    this.startedAt = ports.now();
    this.tier = principal.tier;
  }

  private get simulated(): boolean {
    const { route } = this;
    // A provider's endpoints are simulated all together, or one by one (`openai_compatible:<endpoint>`).
    return route !== null && (this.ports.simulatedProviders.has(route.provider) || this.ports.simulatedProviders.has(`${route.provider}:${route.endpoint}`));
  }

  get jurisdiction(): ResolvedJurisdiction | null {
    return this.route ? (this.simulated ? 'SIMULATED' : this.route.jurisdiction) : null;
  }

  get path(): string[] {
    const { route, provider } = this;
    if (!route || !provider) return [];
    return custodyPath(this.ports.gatewayRegion, this.simulated ? [standInHop(route.provider, route.upstream_id)] : provider.custodyHops(route));
  }

  /** Response headers; the residency ones are known once the route is, which is before the first byte. */
  headers(): Record<string, string> {
    const h = requestHeaders(this.requestId);
    h['x-ni-privacy-tier'] = this.tier;
    if (this.route) {
      h['x-ni-resolved-jurisdiction'] = this.jurisdiction!;
      h['x-ni-custody-path'] = formatCustodyPath(this.path);
    }
    if (this.protection) h['x-ni-pii-substitutions'] = String(this.protection.total);
    return h;
  }

  failed(e: GatewayError): GatewayError {
    this.error = e;
    this.status = 'error';
    this.httpStatus = e.status;
    return e;
  }

  event(): CustodyEvent {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      schema_version: 1,
      request_id: this.requestId,
      key_id: this.principal.keyId,
      started_at: iso(this.startedAt)!,
      first_byte_at: iso(this.firstByteAt),
      ended_at: iso(this.ports.now())!,
      model: this.model,
      privacy_tier: this.tier,
      jurisdiction: this.jurisdiction,
      route: this.route && { provider: this.route.provider, region: this.route.region, upstream_id: this.route.upstream_id },
      custody_path: this.path,
      ...(this.attempts.length ? { attempts: this.attempts } : {}),
      usage: { input_tokens: this.usage.input, output_tokens: this.usage.output, cache_read_tokens: this.usage.cache_read, cache_write_tokens: this.usage.cache_write },
      cost_micro_cad: this.cost,
      ...(this.credential && { credential: this.credential }),
      ...(this.providerCost !== null && { provider_cost_estimate_micro_cad: this.providerCost }),
      status: this.status,
      http_status: this.httpStatus,
      finish_reason: this.finishReason,
      error_code: this.error?.code ?? null,
      pii_substitutions: this.protection?.counts ?? {},
      request_sha256: this.requestSha256,
      response_sha256: this.responseHash.digest('hex'),
    };
  }
}

const SETTLE_ATTEMPTS = 3;
const SETTLE_BACKOFF_MS = 200;

/**
 * The deadlines of one upstream call: until the provider accepts it (connect and first byte), and for the whole
 * answer from the request's start. `signal` aborts with the error to answer.
 */
interface Deadline {
  signal: AbortSignal;
  /**
   * `pending`, or the deadline's error if it passes first. One waits at a time (the call, then each event):
   * a single abort listener serves them all, so a long stream adds nothing per event.
   */
  race<T>(pending: Promise<T>): Promise<T>;
  /** The provider accepted the call: only the whole-answer deadline remains. */
  accepted(): void;
  /** The answer is over: no deadline remains. */
  clear(): void;
}

function deadlineFor(ports: GatewayPorts, startedAt: number): Deadline {
  const { acceptMs, totalMs } = ports.deadlines;
  const controller = new AbortController();
  let rejectWaiting: ((reason: unknown) => void) | null = null;
  controller.signal.addEventListener('abort', () => rejectWaiting?.(controller.signal.reason), { once: true });
  const seconds = Math.round(totalMs / 1000);
  const cancelTotal = ports.schedule(startedAt + totalMs - ports.now(), () => controller.abort(new GatewayError(504,
    `The answer did not complete within the gateway's limit of ${seconds} seconds per request; it ends here and what was generated is billed.`,
    'api_error', 'upstream_deadline_exceeded')));
  const cancelAccept = ports.schedule(acceptMs, () => controller.abort(new UpstreamError('timeout')));
  return {
    signal: controller.signal,
    race<T>(pending: Promise<T>): Promise<T> {
      if (controller.signal.aborted) return Promise.reject(controller.signal.reason);
      return new Promise<T>((resolve, reject) => {
        rejectWaiting = reject;
        pending.then(resolve, reject);
      });
    },
    accepted: cancelAccept,
    clear() {
      cancelAccept();
      cancelTotal();
    },
  };
}

/** A promise's outcome as a value, so that one left unawaited (the request ended first) never rejects unhandled. */
const settled = <T>(p: Promise<T>): Promise<PromiseSettledResult<T>> =>
  p.then((value) => ({ status: 'fulfilled', value }), (reason: unknown) => ({ status: 'rejected', reason }));

/** Ends an upstream answer nobody reads any more (its generator's `finally` closes the provider's stream). */
function abandon(events: AsyncIterator<StreamEvent>): void {
  Promise.resolve(events.return?.()).catch(() => undefined);
}

/** A request whose response has ended: its after-response work runs until `recorded` resolves. */
export interface Responded {
  recorded: Promise<void>;
}

export type ChatCompletions = (req: HttpRequest, principal: Principal, sink: ResponseSink) => Promise<Responded>;

/**
 * POST /v1/chat/completions: parse → resolve → protect → admit (limits and cap) → call → relay, then record. Resolves once the
 * response has ended; the caller waits for `recorded` (a Lambda must not return before). Recording holds only the
 * records it writes, not the request or the response.
 */
export function chatCompletions(ports: GatewayPorts): ChatCompletions {
  const { catalog, providers, spend, now } = ports;

  /**
   * Admission, settled before anything goes upstream, so a refused request never reaches the provider: the key's
   * request limits (one conditional write, started when the request arrived) and, for a key with a cap, the
   * worst case reserved (one conditional write), awaited together so that neither waits for the other. A key
   * without a cap has nothing to reserve: its cost is recorded after the response. When one refuses, the other's
   * hold is given back after the response, and the refusal is the answer (the limits' when both refuse).
   */
  async function admit(o: Outcome, worstCase: () => number): Promise<void> {
    const { principal: p, requestId, model, tier } = o;
    // Neither limits nor a cap: nothing was written, nothing to wait for.
    if (!o.admission && p.maxSpendPerDay === null) {
      o.reservation = spend.unreserved(p, requestId, model, tier);
      return;
    }
    const [limits, reservation] = await Promise.all([
      o.admission,
      settled(p.maxSpendPerDay === null ? Promise.resolve(spend.unreserved(p, requestId, model, tier)) : spend.reserve(p, requestId, worstCase(), model, tier)),
    ]);
    if (limits?.status !== 'rejected' && reservation.status === 'fulfilled') {
      o.reservation = reservation.value;
      return;
    }
    if (reservation.status === 'fulfilled') o.unusedReservation = reservation.value;
    throw limits?.status === 'rejected' ? limits.reason : (reservation as PromiseRejectedResult).reason;
  }

  /**
   * Feeds the provider's events to the sink until they end or the deadline passes; records usage and the finish
   * reason, or throws on a broken stream.
   */
  async function relay(o: Outcome, events: AsyncIterable<StreamEvent>, sink: CompletionSink, deadline: Deadline): Promise<void> {
    const firstToken = () => {
      if (o.firstTokenAt === null) o.firstTokenAt = now();
    };
    const reader = new AnswerReader({
      text: (d) => (firstToken(), (o.relayedBytes += Buffer.byteLength(d)), sink.text(d)),
      toolCall: (i, id, name) => (firstToken(), (o.relayedBytes += Buffer.byteLength(name)), sink.toolCall(i, id, name)),
      toolArguments: (i, f) => ((o.relayedBytes += Buffer.byteLength(f)), sink.toolArguments(i, f)),
    });
    const iterator = events[Symbol.asyncIterator]();
    let next: Promise<IteratorResult<StreamEvent>> | undefined;
    try {
      for (;;) {
        next = iterator.next();
        const result = await deadline.race(next);
        if (result.done) break;
        reader.handle(result.value);
      }
    } catch (err) {
      if (deadline.signal.aborted) {
        next?.catch(() => undefined);
        abandon(iterator);
      }
      throw err instanceof GatewayError ? err : upstreamStreamError('The model provider failed during the response.');
    } finally {
      // Whatever the provider reported is billed; without a report (a stream that broke or hit the deadline
      // first), an estimate of what was generated, never 0.
      o.usage = reader.usage ?? estimatedUsage(o.requestBytes, o.relayedBytes);
      o.usageBasis = reader.usage ? 'reported' : 'estimated';
      if (o.prices) o.cost = costOf(o.usage, o.prices);
      if (o.customerPrices) o.providerCost = costOf(o.usage, o.customerPrices);
    }
    o.finishReason = reader.complete();
  }

  /** Settles with retries; if it still fails, the reservation is kept so the cost is never released unrecorded. */
  async function settle(o: Outcome, r: Reservation, event: CustodyEvent): Promise<void> {
    const { requestId } = o;
    for (let attempt = 1; attempt <= SETTLE_ATTEMPTS; attempt++) {
      try {
        return await spend.settle(r, event, o.usageBasis);
      } catch (err) {
        ports.log.error('usage settle failed', { requestId, attempt, error: (err as Error).name });
        if (attempt < SETTLE_ATTEMPTS) await new Promise<void>((done) => ports.schedule(SETTLE_BACKOFF_MS * 2 ** (attempt - 1), done));
      }
    }
    await spend.keep(r).then(
      () => ports.log.error('usage not recorded; its reservation is kept', { requestId, costMicroCad: o.cost, reservedMicroCad: r.amount }),
      (err) => ports.log.error('usage not recorded and its reservation not kept', { requestId, costMicroCad: o.cost, error: (err as Error).name }),
    );
  }

  /** After the response: log line, metrics, spend and usage record, custody event. Never rejects. */
  function record(o: Outcome): Promise<void> {
    const event = o.event();
    const durationMs = now() - o.startedAt;
    const ttftMs = o.firstTokenAt === null ? null : o.firstTokenAt - o.startedAt;
    if (o.httpStatus >= 500) ports.log.error('request failed', { requestId: o.requestId, code: event.error_code, status: o.httpStatus });
    ports.log.info('request', {
      requestId: o.requestId, keyId: o.principal.keyId, model: o.model, tier: o.tier, status: o.status, httpStatus: o.httpStatus,
      finishReason: o.finishReason, errorCode: event.error_code, inputTokens: o.usage.input, outputTokens: o.usage.output, costMicroCad: o.cost,
      ttftMs, durationMs, upstreamThrottles: o.throttles, piiSubstitutions: o.protection?.total ?? 0, jurisdiction: event.jurisdiction,
      ...(o.credential && { credential: o.credential.owner, byokFallback: o.credential.fallback }),
    });
    ports.metrics.request(event, { ttftMs, durationMs, upstreamThrottles: o.throttles });
    const { reservation, unusedReservation, admission, credential } = o;
    const customerCalled = credential && o.attempts.some((a) => a.credential === 'customer');
    const failed = (what: string) => (err: unknown) => ports.log.error(what, { requestId: o.requestId, error: (err as Error).name });
    return Promise.all([
      customerCalled ? ports.byok.used(o.principal.keyId, credential.provider, credential.fingerprint) : undefined,
      // Whatever ended the request, even before admission was awaited (a client error), the slot it took is freed.
      admission?.then((a) => (a.status === 'fulfilled' && a.value ? ports.limits.release(a.value).catch(failed('request limit release failed')) : undefined)),
      unusedReservation ? spend.release(unusedReservation).catch(failed('spend reservation release failed')) : undefined,
      reservation ? settle(o, reservation, event) : undefined,
      ports.custody.emit(event),
    ]).then(() => undefined);
  }

  /**
   * The call on the customer's own credential. Its refusal, rate limit or quota (byok_provider_error) ends the
   * request, unless the key allows falling back: then the operator's routes of the same jurisdiction serve it at
   * the list price, and the custody event and usage say so.
   */
  async function callCustomer(o: Outcome, plan: ByokPlan, model: Model, request: ChatRequest, maxTokens: number, opts: UpstreamOptions): Promise<Attempted> {
    const { provider, credential } = plan;
    o.credential = { owner: 'customer', provider, fingerprint: credential.fingerprint, fallback: false };
    o.customerPrices = model.prices;
    let secret: string;
    try {
      secret = await ports.byok.open(o.principal.keyId, provider, credential);
    } catch (err) {
      ports.log.error('BYOK credential not opened', { requestId: o.requestId, keyId: o.principal.keyId, provider, error: (err as Error).name });
      throw new GatewayError(500, `The gateway could not open this API key's own ${provider} credential; nothing was sent upstream.`, 'server_error', 'byok_credential_unavailable');
    }
    // A provider served by a local stand-in is simulated whole: the stand-in answers in the customer's resource's place.
    const endpoint = ports.simulatedProviders.has(provider) ? undefined : credential.endpoint;
    try {
      return await callUpstream(providers, plan.routes, request, maxTokens, { ...opts, customer: { provider, credential: { secret, ...(endpoint && { endpoint }) } } });
    } catch (err) {
      if (!(err instanceof GatewayError && err.code === 'byok_provider_error') || !credential.allow_fallback) throw err;
      const { jurisdiction } = plan.routes[0];
      const fallback = model.served.filter((r) => tierAllows(o.tier, r) && r.jurisdiction === jurisdiction);
      if (!fallback.length) throw err;
      o.credential = { ...o.credential, owner: 'operator', fallback: true };
      o.prices = model.prices;
      o.customerPrices = null;
      const from = opts.attempts.length;
      try {
        return await callUpstream(providers, fallback, request, maxTokens, opts);
      } finally {
        for (const a of opts.attempts.slice(from)) a.credential = 'operator';
      }
    }
  }

  return async (req, principal, sink) => {
    const o = new Outcome(ports, req.requestId, principal);
    let upstream: Attempted;
    let chat: ChatRequest;
    let deadline: Deadline | null = null;
    try {
      const bytes = (o.requestBytes = Buffer.byteLength(req.body));
      if (bytes > MAX_REQUEST_BODY_BYTES) throw GATEWAY_ERRORS.requestTooLarge();
      // The request limits' write goes out first and runs while the request is parsed, resolved and scanned
      // (all synchronous); admit() awaits it. A key without limits writes nothing here.
      if (hasRateLimits(principal)) o.admission = settled(ports.limits.admit(principal, o.requestId));
      chat = parseChatRequest(req.body);
      o.tier = resolveTier(principal, chat.privacyTier, req.headers['x-ni-privacy-tier']);
      // A key with its own credential for a provider serving the model under this tier uses it (core/byok.ts).
      const known = catalog.byId.get(chat.model);
      const plan = known ? byokPlan(known, o.tier, principal.byok) : null;
      // Errors list what this key can call: with its own credentials, more than the deployment serves.
      const keyModels = principal.byok && (() => modelsForKey(catalog, o.tier, principal.byok));
      const { model, routes } = plan ? { model: known!, routes: plan.routes } : resolveModel(catalog, chat.model, o.tier, keyModels);
      assertCapable(catalog, model, o.tier, { tools: offersTools(chat), images: hasImages(chat) }, keyModels);
      // Only a catalog id goes into records: an unknown model string is client text, possibly anything.
      o.model = model.id;
      o.prices = plan ? model.byok_fee_prices : model.prices;
      o.protection = protect(chat, principal.piiMode);
      const maxTokens = outputBudget(model, chat.maxTokens, principal.defaultMaxTokens);
      // A key that may fall back to the operator's credential may be billed the list price: its reservation covers it.
      await admit(o, () => reservationAmount(model, bytes, maxTokens, plan?.credential.allow_fallback ? model.prices : o.prices!));
      deadline = deadlineFor(ports, o.startedAt);
      const opts: UpstreamOptions = { attempts: o.attempts, firstByteTimeoutMs: ports.upstreamFirstByteTimeoutMs, schedule: ports.schedule, signal: deadline.signal };
      const call = plan ? callCustomer(o, plan, model, o.protection.request, maxTokens, opts) : callUpstream(providers, routes, o.protection.request, maxTokens, opts);
      call.then((late) => deadline!.signal.aborted && abandon(late.stream.events[Symbol.asyncIterator]()), () => undefined);
      upstream = await deadline.race(call);
      deadline.accepted();
      o.route = upstream.route;
      o.provider = upstream.provider;
      o.throttles = upstream.throttles;
      o.requestSha256 = upstream.stream.requestSha256;
    } catch (err) {
      deadline?.clear();
      const e = o.failed(asGatewayError(err));
      if (e.code === 'upstream_throttled') o.throttles = Number(e.extra.upstream_throttles ?? 1);
      o.responseHash.update(sendJson(sink, e.status, { ...o.headers(), ...e.headers }, e.toBody()));
      return { recorded: record(o) };
    }

    let clientGone = false;
    sink.onClose(() => {
      clientGone = true;
    });
    const write = (s: string) => {
      if (o.firstByteAt === null) o.firstByteAt = now();
      o.responseHash.update(s);
      // A cancelled stream is still drained so that the usage the provider bills is the usage recorded.
      if (!clientGone) sink.write(s);
    };
    const who = { id: `chatcmpl-${o.requestId}`, created: Math.floor(o.startedAt / 1000), model: o.model };
    const session = o.protection!.session;

    if (chat.stream) {
      sink.start(200, { ...o.headers(), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      const fmt = new ChunkFormatter(write, who);
      fmt.role();
      const restoring = session ? new RestoringSink(fmt, session) : null;
      try {
        await relay(o, upstream.stream.events, restoring ?? fmt, deadline!);
        restoring?.flush();
        fmt.finish(o.finishReason!);
        if (chat.includeUsage) fmt.usage(o.usage);
        write(SSE_DONE);
        if (clientGone) o.status = 'cancelled';
      } catch (err) {
        // Streaming has begun: the error becomes the final event and the stream ends.
        const e = o.failed(asGatewayError(err));
        o.httpStatus = 200;
        write(sseError(e.toBody()));
      }
      sink.end();
    } else {
      const acc = new CompletionAccumulator(new Set(chat.tools.filter((tool) => tool.custom).map((tool) => tool.name)));
      try {
        await relay(o, upstream.stream.events, acc, deadline!);
        const restore = session
          ? { text: (s: string) => session.restore(s), json: (s: string) => session.restoreJson(s) }
          : { text: (s: string) => s, json: (s: string) => s };
        o.responseHash.update(sendJson(sink, 200, o.headers(), acc.completion(who, o.finishReason!, o.usage, restore)));
        o.firstByteAt = now();
      } catch (err) {
        const e = o.failed(asGatewayError(err));
        o.responseHash.update(sendJson(sink, e.status, o.headers(), e.toBody()));
      }
    }
    deadline!.clear();
    return { recorded: record(o) };
  };
}
