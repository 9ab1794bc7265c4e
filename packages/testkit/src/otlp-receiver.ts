import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A span as an OTLP receiver sees it (hex ids, decoded attributes), with its service from the resource. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  links: Array<{ traceId: string; spanId: string }>;
  statusCode: number;
}

export interface OtlpReceiver {
  /** The base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  close(): Promise<void>;
}

/**
 * An OTLP http/protobuf receiver on loopback: what the services export lands in `spans`. Real bytes off the
 * wire, decoded here with a minimal protobuf reader for the fields tests look at (the opentelemetry-proto schema:
 * ExportTraceServiceRequest → ResourceSpans → ScopeSpans → Span).
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        try {
          spans.push(...decodeTraces(Buffer.concat(chunks)));
        } catch (error) {
          res.writeHead(400);
          res.end(String(error));
          return;
        }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

type Field = { number: number; wire: number; value: bigint | Buffer };

/** The fields of one protobuf message, in order. */
function fields(buffer: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = buffer[at++];
      if (byte === undefined) throw new Error('truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < buffer.length) {
    const key = Number(varint());
    const number = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ number, wire, value: varint() });
    else if (wire === 1) {
      out.push({ number, wire, value: buffer.readBigUInt64LE(at) });
      at += 8;
    } else if (wire === 2) {
      const length = Number(varint());
      out.push({ number, wire, value: buffer.subarray(at, at + length) });
      at += length;
    } else if (wire === 5) {
      out.push({ number, wire, value: BigInt(buffer.readUInt32LE(at)) });
      at += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const bytesOf = (list: Field[], number: number) =>
  list.filter((f) => f.number === number).map((f) => f.value as Buffer);
const first = (list: Field[], number: number) => list.find((f) => f.number === number)?.value;

function attributes(list: Field[], number: number): Record<string, string | number | boolean> {
  const result: Record<string, string | number | boolean> = {};
  for (const kv of bytesOf(list, number)) {
    const pair = fields(kv);
    const key = (first(pair, 1) as Buffer | undefined)?.toString() ?? '';
    const any = first(pair, 2) as Buffer | undefined;
    if (any === undefined) continue;
    const value = fields(any)[0];
    if (value === undefined) continue;
    if (value.number === 1) result[key] = (value.value as Buffer).toString();
    else if (value.number === 2) result[key] = value.value === 1n;
    else if (value.number === 3) result[key] = Number(BigInt.asIntN(64, value.value as bigint));
    else if (value.number === 4)
      result[key] = Buffer.from((value.value as bigint).toString(16).padStart(16, '0'), 'hex').readDoubleBE(
        0,
      );
  }
  return result;
}

export function decodeTraces(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of bytesOf(fields(body), 1)) {
    const rs = fields(resourceSpans);
    const resource = first(rs, 1) as Buffer | undefined;
    const service = String(
      resource === undefined ? '' : (attributes(fields(resource), 1)['service.name'] ?? ''),
    );
    for (const scopeSpans of bytesOf(rs, 2)) {
      for (const raw of bytesOf(fields(scopeSpans), 2)) {
        const span = fields(raw);
        const hex = (n: number) =>
          ((first(span, n) as Buffer | undefined) ?? Buffer.alloc(0)).toString('hex');
        const status = first(span, 15) as Buffer | undefined;
        spans.push({
          service,
          traceId: hex(1),
          spanId: hex(2),
          parentSpanId: hex(4),
          name: (first(span, 5) as Buffer | undefined)?.toString() ?? '',
          kind: Number((first(span, 6) as bigint | undefined) ?? 0n),
          attributes: attributes(span, 9),
          links: bytesOf(span, 13).map((link) => {
            const l = fields(link);
            return {
              traceId: ((first(l, 1) as Buffer | undefined) ?? Buffer.alloc(0)).toString('hex'),
              spanId: ((first(l, 2) as Buffer | undefined) ?? Buffer.alloc(0)).toString('hex'),
            };
          }),
          statusCode:
            status === undefined ? 0 : Number((first(fields(status), 3) as bigint | undefined) ?? 0n),
        });
      }
    }
  }
  return spans;
}
