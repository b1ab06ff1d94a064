import { readFileSync } from 'node:fs';
import { config } from './config';
import { buildCatalog, type Catalog } from './core/catalog';
import builtIn from './catalog.json';
import { PROVIDER_NAMES } from './providers/names';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);

let loaded: Catalog | undefined;

/** The catalog in force: `NI_CATALOG_FILE` when set, else the built-in data. Loaded once per process. */
export function catalog(): Catalog {
  const file = config().catalogFile;
  return (loaded ??= buildCatalog(file ? JSON.parse(readFileSync(file, 'utf8')) : builtIn, SERVED));
}
