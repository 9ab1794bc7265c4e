/** Writes the generated OpenAPI document to openapi.json, which is committed; a test fails when they differ. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openApiDocument } from '../src/openapi.ts';

const target = join(import.meta.dirname, '..', 'openapi.json');
await writeFile(target, `${JSON.stringify(openApiDocument(), null, 2)}\n`);
console.log(`wrote ${target}`);
