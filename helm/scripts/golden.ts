/** Writes the rendered manifests of every scenario to helm/golden/, which are committed: a template change is then
 * reviewed as a manifest change, and the chart test fails while they differ. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { goldenDir, render, scenarios } from './render.ts';

for (const [name, scenario] of Object.entries(scenarios)) {
  await writeFile(join(goldenDir, `${name}.yaml`), render(scenario.release, [...scenario.args]));
  console.log(`wrote helm/golden/${name}.yaml`);
}
