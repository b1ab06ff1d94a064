import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './portal.css';
import { api } from './api';
import { KeysPage } from './keys';
import { ModelsPage } from './models';
import { ReceiptPage } from './receipt';
import { completeSignIn, signOut, startSignIn } from './signin';
import { UsagePage } from './usage';

interface Me { user: { email: string }; account: { id: string; name: string } }

const PAGES = [['keys', 'Keys'], ['models', 'Models'], ['usage', 'Usage']] as const;
const route = () => location.hash.replace(/^#\/?/, '').split('/');

function App() {
  const [state, setState] = useState<'loading' | 'out' | 'in'>('loading');
  const [error, setError] = useState<string | null>(null);
  const [me, setMe] = useState<Me | null>(null);
  const [path, setPath] = useState(route());

  useEffect(() => {
    completeSignIn().then((signedIn) => { setPath(route()); setState(signedIn ? 'in' : 'out'); }, (e: Error) => { setError(e.message); setState('out'); });
    const onHash = () => setPath(route());
    const onOut = () => setState('out');
    addEventListener('hashchange', onHash);
    addEventListener('ni-signed-out', onOut);
    return () => { removeEventListener('hashchange', onHash); removeEventListener('ni-signed-out', onOut); };
  }, []);
  useEffect(() => {
    if (state === 'in') api.get<Me>('me').then(setMe, (e: Error) => setError(e.message));
  }, [state]);

  if (state === 'loading') return <main id="main"><p>Loading…</p></main>;
  if (state === 'out') {
    return (
      <main id="main" class="signin">
        <h1>Northern Inference</h1>
        <p>Sign in to manage your account's API keys, models and usage.</p>
        {error && <p role="alert" class="error">{error}</p>}
        <button type="button" onClick={() => startSignIn().then(setError, (e: Error) => setError(e.message))}>Sign in</button>
      </main>
    );
  }
  const page = ['keys', 'models', 'usage', 'receipt'].includes(path[0]) ? path[0] : 'keys';
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header>
        <strong class="brand">Northern Inference</strong>
        <nav aria-label="Portal">
          {PAGES.map(([id, label]) => <a href={`#/${id}`} aria-current={page === id ? 'page' : undefined}>{label}</a>)}
        </nav>
        <span class="who">{me ? `${me.user.email} · ${me.account.name}` : ''}</span>
        <button type="button" class="link" onClick={() => signOut().then(() => setState('out'))}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1}>
        {error && <p role="alert" class="error">{error}</p>}
        {page === 'keys' && <KeysPage />}
        {page === 'models' && <ModelsPage />}
        {page === 'usage' && <UsagePage />}
        {page === 'receipt' && <ReceiptPage keyId={path[1]} requestId={path[2]} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
