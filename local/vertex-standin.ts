/**
 * Local Vertex AI stand-in: a loopback server speaking Vertex AI's wire protocol for Gemini so the gateway's
 * Vertex client runs against it unchanged:
 *   POST /token   Google's OAuth token endpoint for a service account (RFC 7523 JWT bearer grant): the RS256
 *                 assertion is verified against the stand-in's own service-account key (signature, iss, aud,
 *                 scope, expiry) before an access token is issued.
 *   POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:streamGenerateContent?alt=sse
 *                 with `Authorization: Bearer <issued token>`: GenerateContentResponse chunks as SSE.
 *   POST /v1/token   Google's Security Token Service for workload identity federation from AWS: the subject token
 *                 (a serialized, SigV4-signed AWS STS GetCallerIdentity request) is checked as AWS would check it,
 *                 against the AWS credentials the stand-in is given, and must name the stand-in's pool provider in
 *                 its signed x-goog-cloud-target-resource header; answers a federated token.
 *   POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken   IAM Credentials: with a federated token,
 *                 a token of the stand-in's service account (any other account is 403).
 *   GET  /v1/publishers/google/models/{m}   Vertex AI's publisher model (404 for one not in `models`).
 * Like Gemini it refuses function parameter schemas with keywords outside its OpenAPI subset and function
 * responses that answer no call of the previous model turn, answers errors in Google's error shape, and records
 * every request (the location included, for residency tests). Answers are scripted by local/standin-script.ts.
 */
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { createPublicKey, createVerify, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import type * as http from 'node:http';
import { listen, readBody, type RecordingStandIn, scriptedAnswer, sendJson, SSE_HEADERS, type Turn } from './standin-script';

export interface VertexRecordedRequest {
  path: string;
  project: string;
  location: string;
  model: string;
  /** The bearer token was one the stand-in issued and it had not expired. */
  authorized: boolean;
  body: any;
}

export interface TokenRequest {
  iss: string;
  aud: string;
  scope: string;
}

/** What Google's STS stand-in was sent and what it made of it. */
export interface FederationRequest {
  endpoint: 'sts' | 'iam';
  /** The AWS access key that signed the subject token (sts), or the impersonated account (iam). */
  subject: string;
  ok: boolean;
}

export interface VertexStandIn extends RecordingStandIn<VertexRecordedRequest> {
  /** The workload identity pool provider its STS accepts subject tokens for. */
  workloadIdentityAudience: string;
  /** The service account federated identities may impersonate. */
  clientEmail: string;
  federationRequests: FederationRequest[];
  /** A service-account key (as Google issues them) whose token_uri is this stand-in. */
  serviceAccountKey: { type: 'service_account'; project_id: string; private_key: string; client_email: string; token_uri: string };
  tokenRequests: TokenRequest[];
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};

function sendError(res: http.ServerResponse, code: number, message: string): void {
  sendJson(res, code, { error: { code, message, status: STATUS_NAMES[code] ?? 'UNKNOWN' } });
}

/** The parameter-schema keywords Gemini accepts; anything else is an "Unknown name" 400. */
const SCHEMA_KEYS = new Set(['type', 'format', 'title', 'description', 'nullable', 'enum', 'default', 'example', 'properties', 'required', 'items', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'anyOf', 'propertyOrdering']);

function schemaProblem(schema: any, path: string): string | null {
  if (!schema || typeof schema !== 'object') return null;
  for (const [k, v] of Object.entries(schema)) {
    if (!SCHEMA_KEYS.has(k)) return `Invalid JSON payload received. Unknown name "${k}" at '${path}': Cannot find field.`;
    const nested = k === 'properties' ? Object.entries(v as object).map(([p, s]) => schemaProblem(s, `${path}.properties[${p}]`)) : k === 'items' ? [schemaProblem(v, `${path}.items`)] : k === 'anyOf' ? (v as unknown[]).map((s, i) => schemaProblem(s, `${path}.anyOf[${i}]`)) : [];
    const found = nested.find(Boolean);
    if (found) return found;
  }
  return null;
}

type Part = { text?: string; functionCall?: { name?: string; args?: unknown }; functionResponse?: { name?: string; response?: { output?: unknown; error?: unknown } }; inlineData?: unknown };
type Content = { role?: string; parts?: Part[] };

function requestProblem(body: any): string | null {
  const declarations: any[] = (body.tools ?? []).flatMap((t: any) => t.functionDeclarations ?? []);
  for (const d of declarations) {
    const problem = schemaProblem(d.parameters, `tools[0].function_declarations[${d.name}].parameters`);
    if (problem) return problem;
  }
  const contents: Content[] = body.contents ?? [];
  for (let i = 0; i < contents.length; i++) {
    const answered = (contents[i].parts ?? []).filter((p) => p.functionResponse).map((p) => p.functionResponse!.name);
    if (!answered.length) continue;
    const called = new Set((contents[i - 1]?.parts ?? []).filter((p) => p.functionCall).map((p) => p.functionCall!.name));
    const orphan = answered.find((n) => !called.has(n));
    if (orphan !== undefined) return `Please ensure that function response turn comes immediately after a function call turn (no call of ${orphan}).`;
  }
  return null;
}

const resultText = (r: Part['functionResponse']) => String(r?.response?.output ?? r?.response?.error ?? JSON.stringify(r?.response ?? {}));

function turnOf(body: any): Turn {
  const contents: Content[] = body.contents ?? [];
  const parts = contents[contents.length - 1]?.parts ?? [];
  const userText = parts.map((p) => p.text ?? '').join('');
  const systemText = (body.systemInstruction?.parts ?? []).map((p: Part) => p.text ?? '').join('');
  const promptChars = systemText.length + contents.flatMap((c) => c.parts ?? []).reduce((n, p) => n + (p.text?.length ?? 0) + (p.functionCall ? JSON.stringify(p.functionCall.args).length : 0) + (p.functionResponse ? resultText(p.functionResponse).length : 0), 0);
  const mode = body.toolConfig?.functionCallingConfig?.mode;
  return {
    scriptTexts: [systemText, userText],
    userText,
    toolResults: parts.filter((p) => p.functionResponse).map((p) => resultText(p.functionResponse)),
    tools: mode === 'NONE' ? [] : (body.tools ?? []).flatMap((t: any) => t.functionDeclarations ?? []).map((d: any) => String(d.name)),
    promptChars,
    maxTokens: Number(body.generationConfig?.maxOutputTokens ?? 8192),
  };
}

const MODEL_PATH = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):streamGenerateContent\?alt=sse$/;

function verifyAssertion(assertion: string, publicKey: KeyObject): Record<string, any> | null {
  const [header, claims, signature] = assertion.split('.');
  if (!header || !claims || !signature) return null;
  if (JSON.parse(Buffer.from(header, 'base64url').toString()).alg !== 'RS256') return null;
  const ok = createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(publicKey, Buffer.from(signature, 'base64url'));
  return ok ? JSON.parse(Buffer.from(claims, 'base64url').toString()) : null;
}

export interface VertexStandInOptions {
  port?: number;
  project?: string;
  /** Its service account's key (default: a new one). */
  privateKey?: KeyObject;
  /** Its clock for assertion and token expiry (tests move it). */
  now?: () => number;
  /** The AWS credentials whose signed GetCallerIdentity requests its STS accepts (AWS's side of the check). */
  awsCredentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** The publisher models it lists (default: the Gemini models of the catalog). */
  models?: string[];
}

const WIF_AUDIENCE = '//iam.googleapis.com/projects/000000000000/locations/global/workloadIdentityPools/ni-standin/providers/aws';
const PUBLISHER_MODEL_PATH = /^\/v1\/publishers\/google\/models\/([^/:?]+)$/;
const GENERATE_ACCESS_TOKEN_PATH = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/;

/**
 * AWS's check of a serialized GetCallerIdentity request, done here with the credentials it was given: the same
 * request signed again with the same key at the same time must give the same Authorization header. Returns the
 * signing access key, or null.
 */
async function verifySubjectToken(token: string, audience: string, creds: VertexStandInOptions['awsCredentials']): Promise<string | null> {
  let parsed: { url?: string; method?: string; headers?: { key: string; value: string }[] };
  try {
    parsed = JSON.parse(decodeURIComponent(token));
  } catch {
    return null;
  }
  const headers = Object.fromEntries((parsed.headers ?? []).map((h) => [h.key.toLowerCase(), h.value]));
  const url = new URL(parsed.url ?? 'about:blank');
  const scope = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/sts\/aws4_request, SignedHeaders=([^,]+),/.exec(headers.authorization ?? '');
  if (!creds || !scope || parsed.method !== 'POST' || url.hostname !== `sts.${scope[3]}.amazonaws.com` || url.searchParams.get('Action') !== 'GetCallerIdentity') return null;
  if (scope[1] !== creds.accessKeyId || headers['x-goog-cloud-target-resource'] !== audience) return null;
  if (!scope[4].split(';').includes('x-goog-cloud-target-resource')) return null;
  const signer = new SignatureV4({ service: 'sts', region: scope[3], credentials: creds, sha256: Sha256, applyChecksum: false });
  const unsigned = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization' && k !== 'x-amz-date' && k !== 'x-amz-security-token'));
  const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(headers['x-amz-date'] ?? '');
  if (!date) return null;
  const signingDate = new Date(Date.UTC(+date[1], +date[2] - 1, +date[3], +date[4], +date[5], +date[6]));
  const again = await signer.sign({ method: 'POST', protocol: 'https:', hostname: url.hostname, path: '/', query: Object.fromEntries(url.searchParams), headers: unsigned }, { signingDate });
  return again.headers.authorization === headers.authorization ? scope[1] : null;
}

export async function startVertexStandIn(opts: VertexStandInOptions = {}): Promise<VertexStandIn> {
  const now = opts.now ?? Date.now;
  const privateKey = opts.privateKey ?? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const publicKey = createPublicKey(privateKey);
  const requests: VertexRecordedRequest[] = [];
  const tokenRequests: TokenRequest[] = [];
  /** Issued access tokens and when they expire (ms). */
  const issued = new Map<string, number>();
  let tokenUri = '';
  const clientEmail = 'ni-gateway@ni-standin.iam.gserviceaccount.com';
  const federationRequests: FederationRequest[] = [];
  /** Federated tokens from its STS, which only IAM Credentials takes. */
  const federated = new Map<string, number>();
  const models = new Set(opts.models ?? ['gemini-2.5-flash', 'gemini-2.5-pro']);

  async function sts(res: http.ServerResponse, raw: string): Promise<void> {
    const form = new URLSearchParams(raw);
    const ok = form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:token-exchange' && form.get('audience') === WIF_AUDIENCE
      && form.get('subject_token_type') === 'urn:ietf:params:aws:token-type:aws4_request' && String(form.get('scope')).includes('cloud-platform');
    const signer = ok ? await verifySubjectToken(form.get('subject_token') ?? '', WIF_AUDIENCE, opts.awsCredentials) : null;
    federationRequests.push({ endpoint: 'sts', subject: signer ?? '', ok: signer !== null });
    if (!signer) return sendJson(res, 400, { error: 'invalid_grant', error_description: 'The subject token could not be verified.' });
    const token = `ya29.federated-${randomUUID()}`;
    federated.set(token, now() + 3599_000);
    sendJson(res, 200, { access_token: token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3599 });
  }

  function generateAccessToken(req: http.IncomingMessage, res: http.ServerResponse, account: string): void {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const authorized = bearer !== undefined && (federated.get(bearer) ?? 0) > now();
    federationRequests.push({ endpoint: 'iam', subject: account, ok: authorized && account === clientEmail });
    if (!authorized) return sendError(res, 401, 'Request had invalid authentication credentials.');
    if (account !== clientEmail) return sendError(res, 403, `Permission 'iam.serviceAccounts.getAccessToken' denied on ${account}`);
    const accessToken = `ya29.standin-${randomUUID()}`;
    const expiresAt = now() + 3600_000;
    issued.set(accessToken, expiresAt);
    sendJson(res, 200, { accessToken, expireTime: new Date(expiresAt).toISOString() });
  }

  function token(res: http.ServerResponse, raw: string): void {
    const form = new URLSearchParams(raw);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return sendJson(res, 400, { error: 'unsupported_grant_type' });
    const claims = verifyAssertion(form.get('assertion') ?? '', publicKey);
    const nowS = Math.floor(now() / 1000);
    if (claims) tokenRequests.push({ iss: claims.iss, aud: claims.aud, scope: claims.scope });
    if (!claims || claims.iss !== clientEmail || claims.aud !== tokenUri || !String(claims.scope).includes('cloud-platform') || !(claims.exp > nowS && claims.iat <= nowS + 60)) {
      return sendJson(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    }
    const accessToken = `ya29.standin-${randomUUID()}`;
    issued.set(accessToken, now() + 3599_000);
    sendJson(res, 200, { access_token: accessToken, expires_in: 3599, token_type: 'Bearer' });
  }

  function publisherModelAnswer(req: http.IncomingMessage, res: http.ServerResponse, model: string): void {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined || (issued.get(bearer) ?? 0) <= now()) return sendError(res, 401, 'Request had invalid authentication credentials.');
    if (!models.has(model)) return sendError(res, 404, `Publisher Model \`publishers/google/models/${model}\` not found.`);
    sendJson(res, 200, { name: `publishers/google/models/${model}`, versionId: '001', openSourceCategory: 'PROPRIETARY', launchStage: 'GA', publisherModelTemplate: '' });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (req.method === 'POST' && req.url === '/token') return token(res, raw);
    if (req.method === 'POST' && req.url === '/v1/token') return sts(res, raw);
    const impersonate = req.method === 'POST' ? GENERATE_ACCESS_TOKEN_PATH.exec(req.url ?? '') : null;
    if (impersonate) return generateAccessToken(req, res, decodeURIComponent(impersonate[1]));
    const publisherModel = req.method === 'GET' ? PUBLISHER_MODEL_PATH.exec(req.url ?? '') : null;
    if (publisherModel) return publisherModelAnswer(req, res, decodeURIComponent(publisherModel[1]));
    const m = req.method === 'POST' ? MODEL_PATH.exec(req.url ?? '') : null;
    if (!m) return sendError(res, 404, `no route ${req.method} ${req.url}`);
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendError(res, 400, 'Invalid JSON payload received.');
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    // A federated token works too when the pool's principals hold the Vertex AI role themselves.
    const authorized = bearer !== undefined && Math.max(issued.get(bearer) ?? 0, federated.get(bearer) ?? 0) > now();
    requests.push({ path: req.url!, project: decodeURIComponent(m[1]), location: decodeURIComponent(m[2]), model: decodeURIComponent(m[3]), authorized, body });
    if (!authorized) return sendError(res, 401, 'Request had invalid authentication credentials.');
    const problem = requestProblem(body);
    if (problem) return sendError(res, 400, problem);
    const { script, answer: a } = scriptedAnswer(turnOf(body), 'Vertex AI');

    res.writeHead(200, SSE_HEADERS);
    // Google ends each event with CRLF CRLF.
    const send = (chunk: object) => res.write(`data: ${JSON.stringify({ ...chunk, modelVersion: m[3] })}\r\n\r\n`);
    const content = (parts: object[]) => ({ content: { role: 'model', parts } });
    const upTo = script.failMidStream ? Math.ceil(a.deltas.length / 2) : a.deltas.length;
    for (const text of a.deltas.slice(0, upTo)) send({ candidates: [content([{ text }])] });
    if (script.failMidStream) {
      send({ error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } });
      res.end();
      return;
    }
    const usageMetadata = {
      promptTokenCount: a.inputTokens + script.cacheRead,
      candidatesTokenCount: a.outputTokens,
      ...(script.thoughts ? { thoughtsTokenCount: script.thoughts } : {}),
      ...(script.cacheRead ? { cachedContentTokenCount: script.cacheRead } : {}),
      totalTokenCount: a.inputTokens + script.cacheRead + a.outputTokens + script.thoughts,
    };
    const calls = a.toolCalls.map((c) => ({ functionCall: { name: c.name, args: c.input } }));
    send({ candidates: [{ ...content(calls.length ? calls : [{ text: '' }]), finishReason: a.truncated ? 'MAX_TOKENS' : 'STOP' }], usageMetadata });
    res.end();
  }

  const server = await listen(handle, sendError, opts.port);
  tokenUri = `${server.url}/token`;
  return {
    url: server.url,
    serviceAccountKey: {
      type: 'service_account',
      project_id: opts.project ?? 'ni-standin',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: clientEmail,
      token_uri: tokenUri,
    },
    requests,
    tokenRequests,
    workloadIdentityAudience: WIF_AUDIENCE,
    clientEmail,
    federationRequests,
    reset() {
      requests.splice(0);
      tokenRequests.splice(0);
      federationRequests.splice(0);
    },
    close: server.close,
  };
}
