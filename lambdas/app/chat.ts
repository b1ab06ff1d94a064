import { createHash } from 'node:crypto';
import { assertCapable, catalog, resolveModel, type Model, type Route } from '../core/catalog';
import type { ChatRequest, FinishReason } from '../core/chat';
import { ChunkFormatter, CompletionAccumulator, SSE_DONE, sseError } from '../core/completions';
import { ConverseStreamReader, offersTools, toConverseInput, type CompletionSink, type ConverseStreamEvent } from '../core/converse';
import { custodyPath, formatCustodyPath, type CustodyEvent, type ResolvedJurisdiction } from '../core/custody';
import { asGatewayError, GatewayError } from '../core/errors';
import { parseChatRequest } from '../core/openai';
import { outputBudget } from '../core/output-budget';
import { reservationAmount } from '../core/billing';
import { costOf, ZERO_USAGE, type TokenUsage } from '../core/pricing';
import { resolveTier, type Principal } from '../core/principal';
import { protect, RestoringSink, type Protection } from '../core/privacy';
import type { Tier } from '../core/tiers';
import { logger } from '../observability';
import { callUpstream, type Attempted } from '../providers/upstream';
import { emitCustodyEvent } from '../store/custody-events';
import { reserve, settle, unreserved, type Reservation } from '../store/spend';
import { flushMetrics, recordRequestMetrics } from '../telemetry';
import { GATEWAY_ERRORS, MAX_REQUEST_BODY_BYTES, requestHeaders, sendJson, type HttpRequest, type ResponseSink } from './http';

const GATEWAY_REGION = process.env.NI_GATEWAY_REGION ?? process.env.AWS_REGION ?? 'ca-central-1';

/** What one request did, gathered as it runs and settled after the client has its answer. */
class Trace {
  readonly startedAt = Date.now();
  firstByteAt: number | null = null;
  firstTokenAt: number | null = null;
  /** The catalog id once resolved; empty for requests refused before. */
  model = '';
  tier: Tier;
  route: Route | null = null;
  simulated = false;
  reservation: Reservation | null = null;
  protection: Protection | null = null;
  requestSha256: string | null = null;
  readonly responseHash = createHash('sha256');
  usage: TokenUsage = ZERO_USAGE;
  cost = 0;
  throttles = 0;
  status: CustodyEvent['status'] = 'ok';
  httpStatus = 200;
  finish: FinishReason | null = null;
  error: GatewayError | null = null;
  prices: Model['prices'] | null = null;

  constructor(readonly requestId: string, readonly principal: Principal) {
    this.tier = principal.tier;
  }

  get jurisdiction(): ResolvedJurisdiction | null {
    return this.route ? (this.simulated ? 'SIMULATED' : this.route.jurisdiction) : null;
  }

  get path(): string[] {
    return this.route ? custodyPath(GATEWAY_REGION, this.route, this.simulated) : [];
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

  event(): CustodyEvent {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      schema_version: 1,
      request_id: this.requestId,
      key_id: this.principal.keyId,
      started_at: iso(this.startedAt)!,
      first_byte_at: iso(this.firstByteAt),
      ended_at: new Date().toISOString(),
      model: this.model,
      privacy_tier: this.tier,
      jurisdiction: this.jurisdiction,
      route: this.route && { provider: this.route.provider, region: this.route.region, upstream_id: this.route.upstream_id },
      custody_path: this.path,
      usage: { input_tokens: this.usage.input, output_tokens: this.usage.output, cache_read_tokens: this.usage.cache_read, cache_write_tokens: this.usage.cache_write },
      cost_micro_cad: this.cost,
      status: this.status,
      http_status: this.httpStatus,
      finish_reason: this.finish,
      error_code: this.error?.code ?? null,
      pii_substitutions: this.protection?.counts ?? {},
      request_sha256: this.requestSha256,
      response_sha256: this.responseHash.digest('hex'),
    };
  }
}

/** A request whose response has ended: its after-response work (settling) runs until `settled` resolves. */
export interface Answered {
  settled: Promise<void>;
}

/**
 * POST /v1/chat/completions: parse → resolve → admit → protect → call → relay. Resolves once the response has
 * ended and the settling has begun; the caller waits for `settled` (a Lambda must not return before). Settling
 * holds only the records it writes: back to back, requests settle together (group-commit.ts), and a request and
 * response kept alive until then would outlive the young generation and fill the old one.
 */
export async function chatCompletions(req: HttpRequest, principal: Principal, sink: ResponseSink): Promise<Answered> {
  const t = new Trace(req.requestId, principal);
  let upstream: Attempted;
  let chat: ChatRequest;
  try {
    const bytes = Buffer.byteLength(req.body);
    if (bytes > MAX_REQUEST_BODY_BYTES) throw GATEWAY_ERRORS.requestTooLarge();
    chat = parseChatRequest(req.body);
    t.tier = resolveTier(principal, chat.privacyTier ?? req.headers['x-ni-privacy-tier']);
    const models = catalog();
    const { model, routes } = resolveModel(models, chat.model, t.tier);
    assertCapable(models, model, t.tier, { tools: offersTools(chat), images: chat.messages.some((m) => m.content.some((b) => 'image' in b)) });
    // Only a catalog id goes into records: an unknown model string is client text, possibly anything.
    t.model = model.id;
    t.prices = model.prices;
    t.protection = protect(chat, principal.piiMode);
    const maxTokens = outputBudget(model, chat.maxTokens, principal.defaultMaxTokens);
    const protectedChat = t.protection.request;
    const call = () => callUpstream(routes, (r) => toConverseInput(protectedChat, r.upstream_id, maxTokens));
    upstream = await admitAndCall(t, () => reservationAmount(model, bytes, maxTokens), model.id, call);
    t.route = upstream.route;
    t.throttles = upstream.throttles;
    t.simulated = upstream.stream.simulated;
    t.requestSha256 = upstream.stream.requestSha256;
  } catch (err) {
    const e = asGatewayError(err);
    if (e.code === 'upstream_throttled') t.throttles = Number(e.extra.upstream_throttles ?? 1);
    fail(t, e);
    t.responseHash.update(sendJson(sink, e.status, { ...t.headers(), ...e.headers }, e.toBody()));
    return { settled: finish(t) };
  }

  let clientGone = false;
  sink.onClose(() => {
    clientGone = true;
  });
  const write = (s: string) => {
    if (t.firstByteAt === null) t.firstByteAt = Date.now();
    t.responseHash.update(s);
    // A cancelled stream is still drained so that the usage Bedrock bills is the usage recorded.
    if (!clientGone) sink.write(s);
  };
  const who = { id: `chatcmpl-${t.requestId}`, created: Math.floor(t.startedAt / 1000), model: t.model };
  const session = t.protection!.session;

  if (chat.stream) {
    sink.start(200, { ...t.headers(), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const fmt = new ChunkFormatter(write, who);
    fmt.role();
    const restoring = session ? new RestoringSink(fmt, session) : null;
    try {
      await relay(t, upstream.stream.events, restoring ?? fmt);
      restoring?.flush();
      fmt.finish(t.finish!);
      if (chat.includeUsage) fmt.usage(t.usage);
      write(SSE_DONE);
      if (clientGone) t.status = 'cancelled';
    } catch (err) {
      // Streaming has begun: the error becomes the final event and the stream ends.
      const e = asGatewayError(err);
      fail(t, e);
      t.httpStatus = 200;
      write(sseError(e.toBody()));
    }
    sink.end();
  } else {
    const acc = new CompletionAccumulator(new Set(chat.tools.filter((tool) => tool.custom).map((tool) => tool.name)));
    try {
      await relay(t, upstream.stream.events, acc);
      const restore = session
        ? { text: (s: string) => session.restore(s), json: (s: string) => session.restoreJson(s) }
        : { text: (s: string) => s, json: (s: string) => s };
      t.responseHash.update(sendJson(sink, 200, t.headers(), acc.completion(who, t.finish!, t.usage, restore)));
      t.firstByteAt = Date.now();
    } catch (err) {
      const e = fail(t, asGatewayError(err));
      t.responseHash.update(sendJson(sink, e.status, t.headers(), e.toBody()));
    }
  }
  return { settled: finish(t) };
}

/**
 * Admission. A key with a cap reserves the worst case in one conditional write before anything goes upstream,
 * so a rejected request never reaches the provider. A key without a cap has nothing to refuse: it writes
 * nothing on the hot path and its cost is recorded when the request settles.
 */
async function admitAndCall(t: Trace, worstCase: () => number, modelId: string, call: () => Promise<Attempted>): Promise<Attempted> {
  t.reservation = t.principal.maxSpendPerDay === null
    ? unreserved(t.principal, t.requestId, modelId, t.tier)
    : await reserve(t.principal, t.requestId, worstCase(), modelId, t.tier);
  return call();
}

/** Feeds provider events to the sink; records usage and the finish reason, or throws on a broken stream. */
async function relay(t: Trace, events: AsyncIterable<ConverseStreamEvent>, sink: CompletionSink): Promise<void> {
  const counted: CompletionSink = {
    text: (d) => {
      if (t.firstTokenAt === null) t.firstTokenAt = Date.now();
      sink.text(d);
    },
    toolCall: (i, id, name) => {
      if (t.firstTokenAt === null) t.firstTokenAt = Date.now();
      sink.toolCall(i, id, name);
    },
    toolArguments: (i, f) => sink.toolArguments(i, f),
  };
  const reader = new ConverseStreamReader(counted);
  try {
    for await (const event of events) reader.handle(event);
  } catch (err) {
    throw err instanceof GatewayError ? err : new GatewayError(502, 'The model provider failed during the response.', 'api_error', 'upstream_stream_error');
  } finally {
    // Whatever the provider reported is billed, even for a broken stream.
    if (reader.usage) {
      t.usage = reader.usage;
      if (t.prices) t.cost = costOf(t.usage, t.prices);
    }
  }
  t.finish = reader.complete();
}

function fail(t: Trace, e: GatewayError): GatewayError {
  t.error = e;
  t.status = 'error';
  t.httpStatus = e.status;
  if (e.status >= 500) logger.error('request failed', { requestId: t.requestId, code: e.code, status: e.status });
  return e;
}

/** After the response: reconcile spend, usage record, metrics, custody event. Never throws. */
function finish(t: Trace): Promise<void> {
  const event = t.event();
  const durationMs = Date.now() - t.startedAt;
  const ttftMs = t.firstTokenAt === null ? null : t.firstTokenAt - t.startedAt;
  logger.info('request', {
    requestId: t.requestId, keyId: t.principal.keyId, model: t.model, tier: t.tier, status: t.status, httpStatus: t.httpStatus,
    finishReason: t.finish, errorCode: event.error_code, inputTokens: t.usage.input, outputTokens: t.usage.output, costMicroCad: t.cost,
    ttftMs, durationMs, upstreamThrottles: t.throttles, piiSubstitutions: t.protection?.total ?? 0, simulated: t.simulated,
  });
  recordRequestMetrics(event, { ttftMs, durationMs, upstreamThrottles: t.throttles, errorType: t.error?.code ?? undefined });
  flushMetrics();
  const { requestId, reservation } = t;
  return Promise.all([
    reservation ? settle(reservation, event).catch((err) => logger.error('usage settle failed', { requestId, error: (err as Error).name })) : undefined,
    emitCustodyEvent(event),
  ]).then(() => undefined);
}
