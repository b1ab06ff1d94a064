import { readFileSync } from 'node:fs';
import { config } from './config';
import { buildCatalog, CatalogError, type Catalog } from './core/catalog';
import builtIn from './catalog.json';
import { PROVIDER_NAMES, ROUTE_CHECKS, type ProviderName } from './providers/names';

const SERVED: ReadonlySet<string> = new Set(PROVIDER_NAMES);

let loaded: Catalog | undefined;

/**
 * Every served route's residency label, checked by its provider: a label that contradicts the route's region or
 * inference profile would send a tier's data where the tier forbids, so it stops start-up (and `cdk synth`).
 */
function assertRoutesTruthful(c: Catalog): Catalog {
  const problems = c.models.flatMap((m) => m.served.flatMap((route) => {
    const problem = ROUTE_CHECKS[route.provider as ProviderName]?.(route);
    return problem ? [`model "${m.id}" route ${route.provider} ${route.region} ${route.upstream_id}: ${problem}`] : [];
  }));
  if (problems.length) throw new CatalogError(`Invalid catalog: ${problems.join('; ')}`);
  return c;
}

/** The catalog data (`NI_CATALOG_FILE` when set, else the built-in data), validated but its labels unchecked: for `ni catalog check`, which reports them. */
export function uncheckedCatalog(): Catalog {
  const file = config().catalogFile;
  return buildCatalog(file ? JSON.parse(readFileSync(file, 'utf8')) : builtIn, SERVED);
}

/** The catalog in force, its routes' labels checked. Loaded once per process. */
export function catalog(): Catalog {
  return (loaded ??= assertRoutesTruthful(uncheckedCatalog()));
}
