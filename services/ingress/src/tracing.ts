import { context, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { contextFrom } from '@sluice/telemetry';
import type { NextFunction, Request, Response } from 'express';
import { routeTemplate } from './metrics.ts';

/**
 * A SERVER span per HTTP request (OpenTelemetry HTTP conventions), child of the client's trace context when it
 * sent one; everything the request causes — the produce, then the other services' work — joins its trace. The
 * tracking id is an attribute (`sluice.request_id`), so a request's trace is found in Jaeger by its id.
 */
export function serverSpans(tracer: Tracer) {
  return (req: Request, res: Response, next: NextFunction) => {
    const parent = contextFrom(req.headers);
    const span = tracer.startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'url.path': req.path,
          'url.scheme': 'http',
          ...(req.get('user-agent') !== undefined ? { 'user_agent.original': req.get('user-agent') } : {}),
        },
      },
      parent,
    );
    res.once('finish', () => {
      const route = routeTemplate(req);
      span.updateName(`${req.method} ${route}`);
      span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}
