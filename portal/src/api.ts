/*
 * The portal API, on this page's own origin: the script sits at <base>/portal/assets/, the API at <base>/api/portal/
 * (<base> is the API stage or the custom domain's root). The bearer token lives in this tab's sessionStorage only.
 */
export const PORTAL_BASE = new URL('../', import.meta.url);
const API = new URL('../../api/portal/', import.meta.url);
const TOKEN = 'ni.portal.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN),
  set: (t: string) => sessionStorage.setItem(TOKEN, t),
  clear: () => sessionStorage.removeItem(TOKEN),
};

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code: string | null) {
    super(message);
  }
}

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(new URL(path, API), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit' });
  if (!res.ok) {
    const err = await res.json().catch(() => ({})) as { error?: { message?: string; code?: string } };
    if (res.status === 401) {
      token.clear();
      window.dispatchEvent(new Event('ni-signed-out'));
    }
    throw new ApiError(res.status, err.error?.message ?? `HTTP ${res.status}`, err.error?.code ?? null);
  }
  return res;
}

export const api = {
  get: async <T>(path: string): Promise<T> => (await call('GET', path)).json() as Promise<T>,
  post: async <T>(path: string, body: unknown = {}): Promise<T> => (await call('POST', path, body)).json() as Promise<T>,
  /** A file from the API, saved through a download link (the token cannot ride on a plain link). */
  async download(path: string, fallbackName: string): Promise<void> {
    const res = await call('GET', path);
    const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  },
};

export type Tier = 'canadian_sovereign' | 'managed_canadian_cloud' | 'global';
export const TIERS: Tier[] = ['canadian_sovereign', 'managed_canadian_cloud', 'global'];

export interface Key {
  id: string; name: string; project: string | null; prefix: string; created_at: string; revoked_at: string | null;
  tier: Tier; tier_pinned: boolean; allowed_tiers: Tier[]; max_spend_per_day_micro_cad: number | null; timezone: string;
  pii_mode: string; requests_per_minute: number | null; max_concurrent_requests: number | null; spend_today_micro_cad: number; reserved_today_micro_cad: number; last_used_at: string | null;
  byok: { provider: string; masked: string; set_at: string; allow_fallback: boolean }[];
}

/** A key's request limits; null: no such limit. */
export type Limits = Pick<Key, 'requests_per_minute' | 'max_concurrent_requests'>;

export interface ByokView {
  provider: string; masked: string; fingerprint: string; set_at: string; last_used_at: string | null; allow_fallback: boolean;
  routes: { model: string; region: string; jurisdiction: string }[]; endpoint?: string; deployment_type?: string; deployments?: Record<string, string>;
}

export interface Model {
  model_id: string; display_name: string; provider: string; privacy_tiers: Tier[];
  pricing: { input_per_mtok: string; output_per_mtok: string; cache_read_per_mtok: string };
  context_window: number; max_output_tokens: number; capabilities: { streaming: boolean; tools: boolean; vision: boolean };
  placements: { tier: Tier; provider: string; region: string; jurisdiction: string }[];
}

export interface RequestRow {
  request_id: string; key_id: string; key_name: string; model: string; tier: string; jurisdiction: string | null;
  route: { provider: string; region: string; upstream_id: string } | null; status: string; http_status: number;
  input_tokens: number; output_tokens: number; cost_micro_cad: number; ttft_ms: number | null; ended_at: string;
}

export interface DayUsage { day: string; cost_micro_cad: number; requests: number; models: { model: string; cost_micro_cad: number; requests: number }[] }
export interface Daily { from: string; to: string; keys: { key_id: string; key_name: string; max_spend_per_day_micro_cad: number | null; days: DayUsage[] }[] }

export const cad = (micro: number) => `$${(micro / 1_000_000).toFixed(micro && micro < 10_000 ? 4 : 2)}`;
