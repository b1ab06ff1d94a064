import * as z from 'zod';
import { clearByok, setByok, showByok, type ByokSetInput } from '../app/byok';
import { ByokProvider } from '../core/byok';
import type { HttpRequest } from '../app/http';
import { catalog } from '../catalog';
import { CustodyEvent } from '../core/custody';
import { badRequest, GatewayError } from '../core/errors';
import { canonicalJson } from '../core/ledger';
import { keyOptionsFrom, keyView, PortalKeyCreate, PortalLimitsUpdate, portalModels } from '../core/portal';
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_REQUESTS_PER_MINUTE } from '../core/rate-limits';
import { isMonth, residencyCsv, residencyReport } from '../core/residency';
import { shiftDay, spendDay } from '../core/spend-day';
import type { JsonAnswer } from '../handlers/middleware';
import { getAccount, getUser } from '../store/accounts';
import { createKey, getAccountKey, listAccountKeys, revokeKey, updateLimits } from '../store/keys';
import { chainEntries, getReceipt, verifyLedger } from '../store/ledger';
import { reportSigner } from '../store/signer';
import { queryUsage, recentRequests, type RequestUsage } from '../store/usage';
import type { PortalAuthenticator } from './auth';
import { PORTAL_HEADERS } from './headers';

/*
 * The portal's JSON API, under /api/portal/. Every answer is about the signed-in user's account only: the
 * account comes from the user record the verified token names, never from the request, and every key id in a
 * path or query is checked to belong to that account before anything of it is read.
 */

export const PORTAL_API_PREFIX = '/api/portal/';

const notFound = (what: string) => new GatewayError(404, `No ${what} in this account.`, 'not_found_error', 'not_found');
const unauthenticated = () => new GatewayError(401, 'Sign in to the portal again.', 'authentication_error', 'not_signed_in');

interface Session {
  userId: string;
  email: string;
  accountId: string;
}

const LIVE_LIMIT = 100;
const CHART_DAYS = 30;

function json(status: number, body: unknown, headers: Record<string, string> = {}): JsonAnswer {
  return { status, body, headers: { ...PORTAL_HEADERS, 'cache-control': 'no-store', ...headers } };
}

function parseBody(req: HttpRequest): unknown {
  // A JSON content type makes any cross-site form post a CORS preflight the portal never grants.
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new GatewayError(415, 'Send JSON (Content-Type: application/json).', 'invalid_request_error', 'unsupported_media_type');
  }
  try {
    return JSON.parse(req.body || '{}');
  } catch {
    throw badRequest('The body is not valid JSON.');
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw badRequest(`${issue.path.join('.') || 'body'}: ${issue.message}`, issue.path.join('.') || null);
}

export function createPortalApi(auth: PortalAuthenticator, now: () => Date = () => new Date()) {
  async function session(req: HttpRequest): Promise<Session> {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const who = m ? await auth.authenticate(m[1]) : null;
    const user = who ? await getUser(who.userId) : undefined;
    if (!user) throw unauthenticated();
    return { userId: user.id, email: user.email, accountId: user.account_id };
  }

  async function accountKey(s: Session, keyId: string) {
    const key = await getAccountKey(s.accountId, keyId);
    if (!key) throw notFound(`key '${keyId}'`);
    return key;
  }

  async function keys(s: Session) {
    const records = await listAccountKeys(s.accountId);
    return Promise.all(records.map(async (k) => {
      const day = spendDay(k.timezone, now()).day;
      const [today] = (await queryUsage(k.id, { from: day, to: day, granularity: 'day', limit: 1 })).data;
      const [last] = await recentRequests(k.id, { limit: 1 });
      return keyView(k, today ? { day, spent: today.cost_micro_cad, reserved: today.reserved_micro_cad } : null, last?.ended_at ?? null);
    }));
  }

  async function liveRequests(s: Session, after: string | undefined) {
    const records = await listAccountKeys(s.accountId);
    const names = new Map(records.map((k) => [k.id, k.name]));
    const all = (await Promise.all(records.map((k) => recentRequests(k.id, { after, limit: LIVE_LIMIT })))).flat();
    const data = all.sort((a, b) => b.ended_at.localeCompare(a.ended_at)).slice(0, LIVE_LIMIT)
      .map((r: RequestUsage) => ({ ...r, key_name: names.get(r.key_id) ?? r.key_id }));
    return { object: 'list', data };
  }

  async function daily(s: Session) {
    const records = await listAccountKeys(s.accountId);
    const to = spendDay('UTC', now()).day;
    const from = shiftDay(to, 1 - CHART_DAYS);
    const perKey = await Promise.all(records.map(async (k) => ({
      key_id: k.id,
      key_name: k.name,
      max_spend_per_day_micro_cad: k.max_spend_per_day,
      days: (await queryUsage(k.id, { from, to, granularity: 'day', limit: CHART_DAYS + 1 })).data,
    })));
    return { object: 'usage.daily', from, to, currency: 'CAD', keys: perKey };
  }

  async function residency(s: Session, q: HttpRequest['query']) {
    const key = await accountKey(s, parse(z.string(), q.key));
    const month = q.month ?? now().toISOString().slice(0, 7);
    if (!isMonth(month)) throw badRequest('month: a month written YYYY-MM', 'month');
    const format = parse(z.enum(['csv', 'json']).default('json'), q.format);
    const [entries, verified] = await Promise.all([chainEntries(key.id), verifyLedger({ keyId: key.id })]);
    const events = entries.flatMap((e) => {
      const parsed = CustodyEvent.safeParse(e.event);
      return parsed.success ? [parsed.data] : [];
    });
    const report = residencyReport({
      accountId: s.accountId, key: { id: key.id, name: key.name, prefix: key.prefix }, month, events,
      chain: verified.chains.find((c) => c.key_id === key.id)!, now: now(),
    });
    const file = `residency-${key.id}-${month}`;
    if (format === 'csv') {
      return { status: 200, body: residencyCsv(report), headers: {
        ...PORTAL_HEADERS, 'cache-control': 'no-store', 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${file}.csv"`,
      } };
    }
    // Signed over the report's canonical JSON with the reports' own key (GET reports/signing-key gives its public half).
    const signer = reportSigner();
    const signature = await signer.sign(Buffer.from(canonicalJson(report), 'utf8'));
    return json(200, { report, signature: { alg: signer.alg, signing_key: signer.keyRef, over: 'canonical JSON of report', value: signature.toString('base64') } },
      { 'content-disposition': `attachment; filename="${file}.json"` });
  }

  return async function handle(req: HttpRequest): Promise<JsonAnswer> {
    if (!req.path.startsWith(PORTAL_API_PREFIX)) throw notFound('such page');
    const path = req.path.slice(PORTAL_API_PREFIX.length).split('/').map(decodeURIComponent);
    const route = `${req.method} ${path[0] ?? ''}`;
    // Before sign-in.
    if (route === 'GET config') return json(200, auth.signInConfig);
    if (route === 'POST session') return json(200, await auth.signIn(parseBody(req)));
    const s = await session(req);
    if (req.method === 'POST') parseBody(req); // every change is JSON (see parseBody)
    switch (`${route}${path.length > 1 ? `/${path.length}` : ''}`) {
      case 'GET me': {
        const account = await getAccount(s.accountId);
        return json(200, { user: { id: s.userId, email: s.email }, account });
      }
      case 'GET keys':
        // The defaults are what the create form's empty limit fields mean.
        return json(200, { object: 'list', data: await keys(s), limit_defaults: { requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE, max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS } });
      case 'POST keys': {
        const options = keyOptionsFrom(s.accountId, parse(PortalKeyCreate, parseBody(req)));
        const { record, secret } = await createKey(options);
        return json(201, { key: keyView(record, null, null), secret });
      }
      case 'POST keys/3': {
        const key = await accountKey(s, path[1]);
        if (path[2] === 'revoke') return json(200, { key: keyView((await revokeKey(key.id))!, null, null) });
        // The same change as `ni keys update`: each limit given is set (null: none), the other kept.
        if (path[2] === 'limits') return json(200, { key: keyView((await updateLimits(key.id, parse(PortalLimitsUpdate, parseBody(req))))!, null, null) });
        // The key's own provider credential (BYOK): the secret goes in, only its masked view comes out.
        if (path[2] === 'byok') return json(200, await setByok(key.id, parseBody(req) as ByokSetInput));
        break;
      }
      case 'GET keys/3':
        if (path[2] !== 'byok') break;
        return json(200, { object: 'list', data: await showByok((await accountKey(s, path[1])).id) });
      case 'POST keys/4': {
        if (path[2] !== 'byok' || path[3] !== 'clear') break;
        const key = await accountKey(s, path[1]);
        const { provider } = parse(z.object({ provider: ByokProvider.optional() }).strict(), parseBody(req));
        return json(200, { cleared: await clearByok(key.id, provider) });
      }
      case 'GET models':
        return json(200, { object: 'list', data: portalModels(catalog()) });
      case 'GET requests':
        return json(200, await liveRequests(s, req.query.after ? parse(z.iso.datetime(), req.query.after) : undefined));
      case 'GET usage':
        return json(200, await daily(s));
      case 'GET custody/3': {
        const key = await accountKey(s, path[1]);
        const receipt = await getReceipt(path[2], key.id);
        if (!receipt) throw notFound(`custody record '${path[2]}' for this key (yet)`);
        return json(200, receipt);
      }
      case 'GET reports/2':
        if (path[1] === 'signing-key') {
          const signer = reportSigner();
          const pem = (await signer.publicKey()).export({ format: 'pem', type: 'spki' }).toString();
          return json(200, { alg: signer.alg, signing_key: signer.keyRef, public_key_pem: pem });
        }
        if (path[1] !== 'residency') break;
        return residency(s, req.query);
    }
    throw notFound('such page');
  };
}
