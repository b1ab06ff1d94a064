import { useEffect, useState } from 'preact/hooks';
import { api } from './api';

interface Receipt {
  request_id: string; key_id: string; hash: string;
  entry: { seq: number; prev_hash: string; recorded_at: string; event: Record<string, unknown> & { custody_path: string[] } };
  checkpoint: { seq: number; time: string; signing_key: string; alg: string } | null;
}

/** One request's custody receipt: its ledger entry as hashed, and the signed checkpoint covering it. */
export function ReceiptPage({ keyId, requestId }: { keyId?: string; requestId?: string }) {
  const [receipt, setReceipt] = useState<Receipt | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!keyId || !requestId) return;
    api.get<Receipt>(`custody/${encodeURIComponent(keyId)}/${encodeURIComponent(requestId)}`).then(setReceipt, (e: Error) => setError(e.message));
  }, [keyId, requestId]);
  return (
    <section aria-labelledby="receipt-title">
      <p><a href="#/usage">← Usage</a></p>
      <h1 id="receipt-title">Custody receipt</h1>
      {error && <p role="alert" class="error">{error}</p>}
      {receipt && (
        <>
          <dl class="facts">
            <dt>Request</dt><dd><code>{receipt.request_id}</code></dd>
            <dt>Custody path</dt><dd><ol class="path">{receipt.entry.event.custody_path.map((hop) => <li><code>{hop}</code></li>)}</ol></dd>
            <dt>Jurisdiction</dt><dd>{String(receipt.entry.event.jurisdiction ?? '—')}</dd>
            <dt>Privacy tier</dt><dd>{String(receipt.entry.event.privacy_tier)}</dd>
            <dt>Ledger entry</dt><dd>#{receipt.entry.seq}, recorded {new Date(receipt.entry.recorded_at).toLocaleString()}</dd>
            <dt>Entry hash</dt><dd><code class="hash">{receipt.hash}</code></dd>
            <dt>Previous hash</dt><dd><code class="hash">{receipt.entry.prev_hash}</code></dd>
            <dt>Signed checkpoint</dt>
            <dd>{receipt.checkpoint ? `#${receipt.checkpoint.seq} at ${new Date(receipt.checkpoint.time).toLocaleString()} (${receipt.checkpoint.alg}, ${receipt.checkpoint.signing_key})` : 'not yet: the next checkpoint will cover it'}</dd>
          </dl>
          <details>
            <summary>The entry as hashed (JSON)</summary>
            <pre>{JSON.stringify(receipt.entry, null, 2)}</pre>
          </details>
        </>
      )}
    </section>
  );
}
