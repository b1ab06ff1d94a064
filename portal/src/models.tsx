import { useEffect, useState } from 'preact/hooks';
import { api, PORTAL_BASE, type Model, TIERS } from './api';
import { tierLabel } from './keys';

/** The models this account can call, their CAD prices, tiers and where each tier processes a request. */
export function ModelsPage() {
  const [models, setModels] = useState<Model[] | null>(null);
  const [tier, setTier] = useState<string>('all');
  const [copied, setCopied] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => { api.get<{ data: Model[] }>('models').then((r) => setModels(r.data), (e: Error) => setError(e.message)); }, []);
  const baseUrl = new URL('../v1', PORTAL_BASE).href;
  const shown = (models ?? []).filter((m) => tier === 'all' || m.privacy_tiers.includes(tier as Model['privacy_tiers'][number]));
  const copy = (id: string) => navigator.clipboard.writeText(id).then(() => setCopied(id), () => setError('Copy failed'));

  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models</h1>
      <aside class="cursor" aria-labelledby="cursor-title">
        <h2 id="cursor-title">Use it in Cursor</h2>
        <ol>
          <li>Cursor → Settings → Models → <em>OpenAI API Key</em>: paste a key from the Keys page.</li>
          <li>Turn on <em>Override OpenAI Base URL</em> and enter <code>{baseUrl}</code>.</li>
          <li>Add the model id below as a <strong>custom model</strong> (not Cursor's built-in entry of the same name), then press <em>Verify</em>.</li>
          <li>Cursor's servers make the calls, so use the deployed URL, not 127.0.0.1; requests run under the key's default tier.</li>
        </ol>
      </aside>
      <label for="tier-filter">Privacy tier</label>
      <select id="tier-filter" value={tier} onChange={(e) => setTier((e.currentTarget as HTMLSelectElement).value)}>
        <option value="all">All tiers</option>
        {TIERS.map((t) => <option value={t}>{tierLabel(t)}</option>)}
      </select>
      {error && <p role="alert" class="error">{error}</p>}
      {models === null ? <p>Loading…</p> : (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Models, prices in CAD per million tokens</caption>
            <thead><tr><th scope="col">Model</th><th scope="col">Input / output per M tokens</th><th scope="col">Where each tier processes it</th><th scope="col">Capabilities</th><th scope="col">Context</th></tr></thead>
            <tbody>
              {shown.map((m) => (
                <tr key={m.model_id}>
                  <td data-label="Model">
                    <code>{m.model_id}</code>{' '}
                    <button type="button" class="small" onClick={() => copy(m.model_id)} aria-label={`Copy ${m.model_id}`}>{copied === m.model_id ? 'Copied' : 'Copy'}</button>
                    <div class="muted">{m.display_name}</div>
                  </td>
                  <td data-label="Price">${m.pricing.input_per_mtok} / ${m.pricing.output_per_mtok}</td>
                  <td data-label="Tiers">
                    <ul class="plain">{m.placements.map((p) => <li>{tierLabel(p.tier)}: {p.jurisdiction} ({p.provider} {p.region})</li>)}</ul>
                  </td>
                  <td data-label="Capabilities">{[m.capabilities.tools && 'tools', m.capabilities.vision && 'images', m.capabilities.streaming && 'streaming'].filter(Boolean).join(', ')}</td>
                  <td data-label="Context">{m.context_window.toLocaleString()} tokens</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
