import type { Readiness } from '@sluice/runtime';
import express, { type Express } from 'express';

export interface AppDeps {
  readiness: Readiness;
}

/** Builds the ingress HTTP app; it never listens, so tests drive it without ports. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const report = deps.readiness.report();
    res
      .status(report.ready ? 200 : 503)
      .set('cache-control', 'no-store')
      .json({ status: report.ready ? 'ready' : 'not ready', ...report });
  });
  app.use((req, res) => {
    res
      .status(404)
      .type('application/problem+json')
      .json({ type: 'about:blank', title: 'Not Found', status: 404, instance: req.path });
  });
  return app;
}
