import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ByokView, cad, type Key, type Limits, type Tier, TIERS } from './api';

const TIER_LABELS: Record<Tier, string> = {
  canadian_sovereign: 'Canadian sovereign',
  managed_canadian_cloud: 'Managed Canadian cloud',
  global: 'Global',
};
export const tierLabel = (t: string) => TIER_LABELS[t as Tier] ?? t;

/**
 * Keys: create (the secret shown once, in the dialog only: closing it forgets it), list with today's spend
 * against the cap and the request limits, change the limits, the key's own provider credentials (BYOK), revoke
 * with confirmation.
 */
export function KeysPage() {
  const [keys, setKeys] = useState<Key[] | null>(null);
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<Key | null>(null);
  const [byok, setByok] = useState<Key | null>(null);
  const [limiting, setLimiting] = useState<Key | null>(null);
  const [defaults, setDefaults] = useState<Limits | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => api.get<{ data: Key[]; limit_defaults: Limits }>('keys')
    .then((r) => { setKeys(r.data); setDefaults(r.limit_defaults); }, (e: Error) => setError(e.message));
  useEffect(() => { load(); }, []);

  return (
    <section aria-labelledby="keys-title">
      <div class="title-row">
        <h1 id="keys-title">Keys</h1>
        <button type="button" onClick={() => setCreating(true)}>Create key</button>
      </div>
      {error && <p role="alert" class="error">{error}</p>}
      {keys === null ? <p>Loading…</p> : keys.length === 0 ? <p>No keys yet.</p> : (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">API keys of this account</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Tier</th><th scope="col">Today / cap</th><th scope="col">Limits</th><th scope="col">Last used</th><th scope="col">Own provider keys</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <td data-label="Name">{k.name}{k.project && <div class="muted">{k.project}</div>}</td>
                  <td data-label="Prefix"><code>{k.prefix}</code></td>
                  <td data-label="Tier">{tierLabel(k.tier)}{k.tier_pinned && ' (pinned)'}</td>
                  <td data-label="Today / cap">
                    {cad(k.spend_today_micro_cad)} / {k.max_spend_per_day_micro_cad === null ? 'no cap' : cad(k.max_spend_per_day_micro_cad)}
                    {k.max_spend_per_day_micro_cad !== null && (
                      <meter min={0} max={k.max_spend_per_day_micro_cad || 1} value={k.spend_today_micro_cad} aria-label={`Spend today of ${k.name}`} />
                    )}
                    <div class="muted">{k.timezone}</div>
                  </td>
                  <td data-label="Limits">{limitsText(k)}</td>
                  <td data-label="Last used">{k.last_used_at ? new Date(k.last_used_at).toLocaleString() : 'never'}</td>
                  <td data-label="Own provider keys">{k.byok.length ? k.byok.map((b) => `${b.provider} ${b.masked}`).join(', ') : 'none'}</td>
                  <td data-label="Status">{k.revoked_at ? <span class="badge revoked">revoked</span> : <span class="badge ok">active</span>}</td>
                  <td class="row-actions">{!k.revoked_at && (
                    <>
                      <button type="button" class="secondary small" onClick={() => setLimiting(k)} aria-label={`Limits of ${k.name}`}>Limits</button>
                      <button type="button" class="secondary small" onClick={() => setByok(k)} aria-label={`Own provider keys of ${k.name}`}>BYOK</button>
                      <button type="button" class="danger small" onClick={() => setRevoking(k)} aria-label={`Revoke ${k.name}`}>Revoke</button>
                    </>
                  )}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && <CreateKeyDialog defaults={defaults} onClose={() => { setCreating(false); load(); }} />}
      {limiting && <LimitsDialog k={limiting} onClose={() => { setLimiting(null); load(); }} />}
      {revoking && <RevokeDialog k={revoking} onClose={() => { setRevoking(null); load(); }} />}
      {byok && <ByokDialog k={byok} onClose={() => { setByok(null); load(); }} />}
    </section>
  );
}

function Dialog(props: { title: string; onClose: () => void; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="dialog-title" onClose={props.onClose}>
      <h2 id="dialog-title">{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** e.g. "300/min · 10 at once"; "no limit" when the key has neither. */
function limitsText({ requests_per_minute: rpm, max_concurrent_requests: concurrent }: Limits): string {
  if (rpm === null && concurrent === null) return 'no limit';
  return `${rpm === null ? 'no limit per minute' : `${rpm}/min`} · ${concurrent === null ? 'no limit' : concurrent} at once`;
}

const LIMIT_FIELDS = [
  ['requests_per_minute', 'Requests per minute'],
  ['max_concurrent_requests', 'Requests in progress at once'],
] as const;

/**
 * A number field and a "No limit" box for each request limit. An empty field means `empty` (the default when
 * creating, unchanged when editing); the API validates the numbers.
 */
function LimitFields({ current, empty }: { current?: Limits; empty: (field: keyof Limits) => string }) {
  const [none, setNone] = useState(() => ({
    requests_per_minute: current?.requests_per_minute === null,
    max_concurrent_requests: current?.max_concurrent_requests === null,
  }));
  return (
    <>
      {LIMIT_FIELDS.map(([field, label]) => (
        <Fragment key={field}>
          <label for={`l-${field}`}>{label} <span class="muted">({empty(field)})</span></label>
          <div class="inline-form">
            <input id={`l-${field}`} name={field} type="number" min={1} step={1} inputMode="numeric" class="narrow"
              disabled={none[field]} defaultValue={current?.[field] == null ? '' : String(current[field])} />
            <label class="check"><input type="checkbox" name={`${field}-none`} checked={none[field]}
              onChange={(e) => setNone({ ...none, [field]: (e.currentTarget as HTMLInputElement).checked })} /> No limit</label>
          </div>
        </Fragment>
      ))}
    </>
  );
}

/** The limits the form sets: a number, null (no limit), or left out (empty field). */
function limitsFrom(f: FormData): Partial<Limits> {
  return Object.fromEntries(LIMIT_FIELDS.flatMap(([field]): [string, number | null][] => {
    if (f.get(`${field}-none`) === 'on') return [[field, null]];
    const v = String(f.get(field) ?? '').trim();
    return v === '' ? [] : [[field, Number(v)]];
  }));
}

function CreateKeyDialog({ defaults, onClose }: { defaults: Limits | null; onClose: () => void }) {
  const [secret, setSecret] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [tier, setTier] = useState<Tier>('managed_canadian_cloud');
  const [busy, setBusy] = useState(false);
  const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'America/Toronto';

  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const cap = String(f.get('cap') ?? '').trim();
    setBusy(true);
    try {
      const out = await api.post<{ secret: string }>('keys', {
        name: String(f.get('name') ?? ''),
        project: String(f.get('project') ?? ''),
        tier,
        tier_pinned: f.get('pinned') === 'on',
        allowed_tiers: TIERS.filter((t) => f.get(`allow-${t}`) === 'on'),
        max_spend_per_day_cad: cap === '' ? null : cap,
        timezone: String(f.get('timezone') ?? ''),
        pii_mode: String(f.get('pii') ?? 'substitute'),
        ...limitsFrom(f),
      });
      setSecret(out.secret);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  // Closing forgets the secret: it is in this component's state only, never stored.
  const close = () => { setSecret(null); onClose(); };
  if (secret) {
    return (
      <Dialog title="Your new key" onClose={close}>
        <p class="warning" role="note"><strong>Copy it now.</strong> This is the only time the secret is shown; it is not stored anywhere and cannot be shown again.</p>
        <label for="secret">Secret</label>
        <div class="copy-row">
          <input id="secret" readOnly value={secret} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
          <button type="button" onClick={() => navigator.clipboard.writeText(secret).then(() => setCopied(true), () => setError('Copy failed: select the secret and copy it.'))}>
            {copied ? 'Copied' : 'Copy'}
          </button>
        </div>
        {error && <p role="alert" class="error">{error}</p>}
        <div class="actions"><button type="button" onClick={close}>Done</button></div>
      </Dialog>
    );
  }
  return (
    <Dialog title="Create key" onClose={onClose}>
      <form onSubmit={submit} class="form">
        <label for="k-name">Name</label>
        <input id="k-name" name="name" required maxLength={100} autoComplete="off" />
        <label for="k-project">Project <span class="muted">(optional)</span></label>
        <input id="k-project" name="project" maxLength={100} autoComplete="off" />
        <label for="k-tier">Default privacy tier</label>
        <select id="k-tier" name="tier" value={tier} onChange={(e) => setTier((e.currentTarget as HTMLSelectElement).value as Tier)}>
          {TIERS.map((t) => <option value={t}>{tierLabel(t)}</option>)}
        </select>
        <fieldset>
          <legend>Tiers a client may ask for</legend>
          {TIERS.map((t, i) => (
            <label class="check"><input type="checkbox" name={`allow-${t}`} defaultChecked={i <= TIERS.indexOf(tier)} key={`${t}-${tier}`} /> {tierLabel(t)}</label>
          ))}
        </fieldset>
        <label class="check"><input type="checkbox" name="pinned" /> Pin the tier (clients cannot choose another)</label>
        <label for="k-cap">Max spend per day, CAD <span class="muted">(empty: no cap)</span></label>
        <input id="k-cap" name="cap" inputMode="decimal" pattern="\d+(\.\d{1,6})?" placeholder="25.00" />
        <label for="k-tz">Spend day time zone</label>
        <input id="k-tz" name="timezone" defaultValue={timezone} />
        <label for="k-pii">Personal data</label>
        <select id="k-pii" name="pii">
          <option value="substitute">Replace with placeholders (substitute)</option>
          <option value="block">Refuse requests containing it (block)</option>
          <option value="off">Send as is (off)</option>
        </select>
        <LimitFields empty={(field) => `empty: the default${defaults?.[field] ? `, ${defaults[field]}` : ''}`} />
        {error && <p role="alert" class="error">{error}</p>}
        <div class="actions">
          <button type="button" class="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={busy}>Create</button>
        </div>
      </form>
    </Dialog>
  );
}

/** Changes a key's request limits, e.g. after its requests met `429 too_many_concurrent_requests`. */
function LimitsDialog({ k, onClose }: { k: Key; onClose: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    try {
      await api.post(`keys/${encodeURIComponent(k.id)}/limits`, limitsFrom(new FormData(e.currentTarget as HTMLFormElement)));
      onClose();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }
  return (
    <Dialog title={`Limits of ${k.name}`} onClose={onClose}>
      <p class="muted">Requests over a limit are refused with HTTP 429. A change reaches requests within about 35 seconds.</p>
      <form onSubmit={submit} class="form">
        <LimitFields current={k} empty={() => 'empty: unchanged'} />
        {error && <p role="alert" class="error">{error}</p>}
        <div class="actions">
          <button type="button" class="secondary" onClick={onClose}>Cancel</button>
          <button type="submit" disabled={busy}>Save limits</button>
        </div>
      </form>
    </Dialog>
  );
}

function RevokeDialog({ k, onClose }: { k: Key; onClose: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const revoke = () => api.post(`keys/${encodeURIComponent(k.id)}/revoke`).then(onClose, (e: Error) => setError(e.message));
  return (
    <Dialog title={`Revoke ${k.name}?`} onClose={onClose}>
      <p>Requests with <code>{k.prefix}</code> will be refused within about 35 seconds. This cannot be undone.</p>
      {error && <p role="alert" class="error">{error}</p>}
      <div class="actions">
        <button type="button" class="secondary" onClick={onClose}>Cancel</button>
        <button type="button" class="danger" onClick={revoke}>Revoke key</button>
      </div>
    </Dialog>
  );
}

const BYOK_PROVIDERS = [['openai', 'OpenAI'], ['anthropic', 'Anthropic'], ['azure_openai', 'Azure OpenAI']] as const;

/**
 * The key's own provider credentials (BYOK): requests on that provider's routes use the customer's account. The
 * secret is typed into a password field, sent once, and the field emptied; only a masked view ever comes back.
 */
function ByokDialog({ k, onClose }: { k: Key; onClose: () => void }) {
  const [views, setViews] = useState<ByokView[] | null>(null);
  const [provider, setProvider] = useState<string>('openai');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const base = `keys/${encodeURIComponent(k.id)}/byok`;
  const load = () => api.get<{ data: ByokView[] }>(base).then((r) => setViews(r.data), (e: Error) => setError(e.message));
  useEffect(() => { load(); }, []);

  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const azure = provider === 'azure_openai';
    const deployments = Object.fromEntries(String(f.get('deployments') ?? '').split(/\n/).map((l) => l.split('=').map((p) => p.trim())).filter((p) => p.length === 2 && p[0] && p[1]));
    setBusy(true);
    try {
      await api.post(base, {
        provider,
        secret: String(f.get('secret') ?? ''),
        allow_fallback: f.get('fallback') === 'on',
        ...(azure && { endpoint: String(f.get('endpoint') ?? ''), deployment_type: String(f.get('deployment_type') ?? ''), deployments }),
      });
      form.current?.reset(); // the secret leaves the page
      setError(null);
      await load();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }
  const clear = (p: string) => api.post(`${base}/clear`, { provider: p }).then(load, (e: Error) => setError(e.message));

  return (
    <Dialog title={`Own provider keys of ${k.name}`} onClose={onClose}>
      <p class="muted">Requests on a provider's routes use your own account with it; the gateway bills only a routing fee for them.</p>
      {views === null ? <p>Loading…</p> : views.length === 0 ? <p>None set.</p> : (
        <ul class="plain byok-list">
          {views.map((v) => (
            <li>
              <strong>{v.provider}</strong> <code>{v.masked}</code> · set {new Date(v.set_at).toLocaleDateString()} · {v.routes.length} route{v.routes.length === 1 ? '' : 's'}
              {v.allow_fallback && ' · falls back to the operator\'s credential'}{' '}
              <button type="button" class="secondary small" onClick={() => clear(v.provider)} aria-label={`Remove the ${v.provider} credential`}>Remove</button>
            </li>
          ))}
        </ul>
      )}
      <form ref={form} onSubmit={submit} class="form">
        <label for="b-provider">Provider</label>
        <select id="b-provider" value={provider} onChange={(e) => setProvider((e.currentTarget as HTMLSelectElement).value)}>
          {BYOK_PROVIDERS.map(([id, label]) => <option value={id}>{label}</option>)}
        </select>
        <label for="b-secret">API key</label>
        <input id="b-secret" name="secret" type="password" required autoComplete="off" spellcheck={false} />
        {provider === 'azure_openai' && (
          <>
            <label for="b-endpoint">Resource endpoint</label>
            <input id="b-endpoint" name="endpoint" type="url" required placeholder="https://canadaeast.api.cognitive.microsoft.com" />
            <label for="b-type">Deployment type</label>
            <select id="b-type" name="deployment_type">
              <option value="standard">Standard (regional)</option>
              <option value="provisioned">Provisioned (regional)</option>
              <option value="data_zone">Data Zone</option>
              <option value="global_standard">Global Standard</option>
            </select>
            <label for="b-deployments">Deployments, one per line: model id = deployment name</label>
            <textarea id="b-deployments" name="deployments" rows={3} required placeholder="openai/gpt-4o = gpt-4o" />
          </>
        )}
        <label class="check"><input type="checkbox" name="fallback" /> If my credential is refused, use the operator's instead</label>
        {error && <p role="alert" class="error">{error}</p>}
        <div class="actions">
          <button type="button" class="secondary" onClick={onClose}>Close</button>
          <button type="submit" disabled={busy}>Save credential</button>
        </div>
      </form>
    </Dialog>
  );
}
