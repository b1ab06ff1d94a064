import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, cad, type Daily, type Key, type RequestRow } from './api';
import { tierLabel } from './keys';

const POLL_MS = 2000;

/** Requests as they happen (polled every 2 s, newest first), per-day charts, today's spend against caps, reports. */
export function UsagePage() {
  const [rows, setRows] = useState<RequestRow[]>([]);
  const [keys, setKeys] = useState<Key[]>([]);
  const [daily, setDaily] = useState<Daily | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let newest: string | undefined;
    let stopped = false;
    let timer: number | undefined;
    const seen = new Set<string>();
    async function poll() {
      try {
        const r = await api.get<{ data: RequestRow[] }>(`requests${newest ? `?after=${encodeURIComponent(newest)}` : ''}`);
        const fresh = r.data.filter((row) => !seen.has(row.request_id));
        if (fresh.length) {
          for (const row of fresh) seen.add(row.request_id);
          newest = [newest ?? '', ...fresh.map((row) => row.ended_at)].sort().at(-1);
          setRows((old) => [...fresh, ...old].sort((a, b) => b.ended_at.localeCompare(a.ended_at)).slice(0, 200));
          api.get<Daily>('usage').then(setDaily, () => undefined);
          api.get<{ data: Key[] }>('keys').then((k) => setKeys(k.data), () => undefined);
        }
        setError(null);
      } catch (e) {
        setError((e as Error).message);
      }
      if (!stopped) timer = window.setTimeout(poll, POLL_MS);
    }
    poll();
    api.get<Daily>('usage').then(setDaily, (e: Error) => setError(e.message));
    api.get<{ data: Key[] }>('keys').then((k) => setKeys(k.data), (e: Error) => setError(e.message));
    return () => { stopped = true; clearTimeout(timer); };
  }, []);

  const capped = keys.filter((k) => !k.revoked_at && k.max_spend_per_day_micro_cad !== null);
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      {error && <p role="alert" class="error">{error}</p>}
      {capped.length > 0 && (
        <div class="caps" aria-label="Spend today against each cap">
          {capped.map((k) => (
            <div class="cap">
              <span>{k.name}</span>
              <meter min={0} max={k.max_spend_per_day_micro_cad || 1} value={k.spend_today_micro_cad} aria-label={`Spend today of ${k.name}`} />
              <span>{cad(k.spend_today_micro_cad)} / {cad(k.max_spend_per_day_micro_cad!)}</span>
            </div>
          ))}
        </div>
      )}
      <h2>Requests <span class="live" aria-hidden="true">● live</span></h2>
      <div class="table-wrap">
        <table aria-live="polite" aria-label="Latest requests">
          <thead><tr>
            <th scope="col">Time</th><th scope="col">Key</th><th scope="col">Model</th><th scope="col">Tier</th><th scope="col">Jurisdiction</th>
            <th scope="col">Custody path</th><th scope="col">Tokens in / out</th><th scope="col">Cost</th><th scope="col">First token</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Receipt</span></th>
          </tr></thead>
          <tbody>
            {rows.length === 0 && <tr><td colSpan={11}>No requests in the last two days yet. Requests appear here within seconds.</td></tr>}
            {rows.map((r) => (
              <tr key={r.request_id} data-request-id={r.request_id}>
                <td data-label="Time">{new Date(r.ended_at).toLocaleTimeString()}</td>
                <td data-label="Key">{r.key_name}</td>
                <td data-label="Model"><code>{r.model}</code></td>
                <td data-label="Tier">{tierLabel(r.tier)}</td>
                <td data-label="Jurisdiction">{r.jurisdiction ?? '—'}</td>
                <td data-label="Custody path">{r.route ? <code>{`${r.route.provider}@${r.route.region}`}</code> : '—'}</td>
                <td data-label="Tokens">{r.input_tokens} / {r.output_tokens}</td>
                <td data-label="Cost">{cad(r.cost_micro_cad)}</td>
                <td data-label="First token">{r.ttft_ms === null ? '—' : `${r.ttft_ms} ms`}</td>
                <td data-label="Status"><span class={`badge ${r.status === 'ok' ? 'ok' : 'revoked'}`}>{r.status} {r.http_status}</span></td>
                <td><a href={`#/receipt/${encodeURIComponent(r.key_id)}/${encodeURIComponent(r.request_id)}`}>Receipt</a></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {daily && <Charts daily={daily} />}
      <Report keys={keys} />
    </section>
  );
}

function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = new Date(`${from}T00:00:00Z`); d.toISOString().slice(0, 10) <= to; d.setUTCDate(d.getUTCDate() + 1)) out.push(d.toISOString().slice(0, 10));
  return out;
}

/** An axis amount: cents when it has them, else the two significant digits small amounts need. */
const money = (v: number) => `$${v === 0 || Math.abs(v) >= 0.01 ? v.toFixed(2) : Number(v.toPrecision(2)).toString()}`;

const PALETTE = ['#0b5cad', '#b3261e', '#1b7f3b', '#7a4fbf', '#a15c00', '#00727a', '#5f6368'];

function Chart({ title, labels, series }: { title: string; labels: string[]; series: { name: string; values: number[] }[] }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const width = Math.max(280, Math.min(el.clientWidth || 600, 900));
    const plot = new uPlot({
      width, height: 220,
      scales: { x: { time: false } },
      axes: [{ values: (_u, splits) => splits.map((i) => labels[i]?.slice(5) ?? '') }, { size: 64, values: (_u, splits) => splits.map(money) }],
      series: [{ label: 'Day', value: (_u: uPlot, i: number | null) => (i === null ? '—' : labels[i] ?? '—') }, ...series.map((s, i) => ({ label: s.name, stroke: PALETTE[i % PALETTE.length], width: 2, value: (_u: uPlot, v: number | null) => (v === null ? '—' : `$${v.toFixed(4)}`) }))],
    }, [labels.map((_, i) => i), ...series.map((s) => s.values)], el);
    return () => plot.destroy();
  }, [labels.join(), JSON.stringify(series)]);
  return (
    <figure>
      <figcaption>{title}</figcaption>
      <div ref={ref} class="chart" role="img" aria-label={`${title}: ${series.map((s) => `${s.name} $${s.values.reduce((a, b) => a + b, 0).toFixed(2)}`).join(', ')}`} />
    </figure>
  );
}

function Charts({ daily }: { daily: Daily }) {
  const labels = days(daily.from, daily.to);
  const byKey = daily.keys.filter((k) => k.days.length).map((k) => {
    const m = new Map(k.days.map((d) => [d.day, d.cost_micro_cad / 1e6]));
    return { name: k.key_name, values: labels.map((d) => m.get(d) ?? 0) };
  });
  const models = new Map<string, number[]>();
  for (const k of daily.keys) {
    for (const d of k.days) {
      for (const m of d.models) {
        const values = models.get(m.model) ?? labels.map(() => 0);
        const i = labels.indexOf(d.day);
        if (i >= 0) values[i] += m.cost_micro_cad / 1e6;
        models.set(m.model, values);
      }
    }
  }
  const byModel = [...models].map(([name, values]) => ({ name, values }));
  if (!byKey.length) return null;
  return (
    <div class="charts">
      <Chart title="Cost per day by key (CAD)" labels={labels} series={byKey} />
      <Chart title="Cost per day by model (CAD)" labels={labels} series={byModel} />
    </div>
  );
}

function Report({ keys }: { keys: Key[] }) {
  const [key, setKey] = useState('');
  const [month, setMonth] = useState(new Date().toISOString().slice(0, 7));
  const [error, setError] = useState<string | null>(null);
  const chosen = key || keys[0]?.id || '';
  const get = (format: 'csv' | 'json') => api.download(`reports/residency?key=${encodeURIComponent(chosen)}&month=${month}&format=${format}`, `residency-${chosen}-${month}.${format}`)
    .then(() => setError(null), (e: Error) => setError(e.message));
  return (
    <section aria-labelledby="report-title" class="report">
      <h2 id="report-title">Residency report</h2>
      <p>Requests by jurisdiction and tier, personal data substituted by type, and the custody chain's head and verification, for one key and month: for privacy impact assessments under Québec's Law 25 and PIPEDA.</p>
      <div class="inline-form">
        <label for="r-key">Key</label>
        <select id="r-key" value={chosen} onChange={(e) => setKey((e.currentTarget as HTMLSelectElement).value)}>
          {keys.map((k) => <option value={k.id}>{k.name} ({k.prefix})</option>)}
        </select>
        <label for="r-month">Month</label>
        <input id="r-month" type="month" value={month} onChange={(e) => setMonth((e.currentTarget as HTMLInputElement).value)} />
        <button type="button" disabled={!chosen} onClick={() => get('csv')}>Download CSV</button>
        <button type="button" class="secondary" disabled={!chosen} onClick={() => get('json')}>Download signed JSON</button>
      </div>
      {error && <p role="alert" class="error">{error}</p>}
    </section>
  );
}
