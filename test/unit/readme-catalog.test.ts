import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import builtIn from '../../lambdas/catalog.json';
import { buildCatalog } from '../../lambdas/core/catalog';
import { Tier } from '../../lambdas/core/tiers';
import { PROVIDER_NAMES } from '../../lambdas/providers/names';

/**
 * The README's model × tier table (Privacy tiers and residency) against the built-in catalog: every model in one
 * row, and a cell says "—" exactly where the catalog has no route the tier allows. The catalog is taken with every
 * provider the gateway has a client for, configured or not, as the table describes what a deployment can serve.
 */
const catalog = buildCatalog(builtIn, new Set(PROVIDER_NAMES));

function modelTierTable(readme: string): { tiers: Tier[]; rows: { ids: string[]; cells: string[] }[] } {
  const lines = readme.split('\n');
  const header = lines.findIndex((l) => l.startsWith('| Model |'));
  if (header < 0) throw new Error('the README has no model × tier table');
  const cellsOf = (line: string) => line.split('|').slice(1, -1).map((c) => c.trim());
  const tiers = cellsOf(lines[header]).slice(1).map((c) => Tier.parse(c.replace(/`/g, '')));
  const rows: { ids: string[]; cells: string[] }[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [models, ...cells] = cellsOf(line);
    rows.push({ ids: [...models.matchAll(/`([^`]+)`/g)].map((m) => m[1]), cells });
  }
  return { tiers, rows };
}

describe("README's model × tier table", () => {
  const { tiers, rows } = modelTierTable(readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8'));

  test('has a column for every tier and a row for every catalog model, each model once', () => {
    expect([...tiers].sort()).toEqual([...Tier.options].sort());
    const listed = rows.flatMap((r) => r.ids);
    expect([...listed].sort()).toEqual(catalog.models.map((m) => m.id).sort());
  });

  test('says "—" exactly where the catalog serves the model under no route the tier allows', () => {
    for (const { ids, cells } of rows) {
      expect(cells).toHaveLength(tiers.length);
      for (const id of ids) {
        const model = catalog.byId.get(id)!;
        tiers.forEach((tier, i) => {
          expect({ id, tier, servable: cells[i] !== '—' }).toEqual({ id, tier, servable: model.tiers.includes(tier) });
        });
      }
    }
  });
});
