/** Reading request bodies and writing responses on bare node:http, with the limits the API promises. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpRequestError } from '../errors.js';

/**
 * Headers on every answer: nothing here may be cached by a proxy (user records, readiness), and
 * browsers must not sniff JSON into something executable.
 */
const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/**
 * A too-large body up to this size is read and thrown away after the 413, which keeps the
 * connection usable and lets the client read the answer. Beyond it the connection is closed:
 * reading gigabytes to be polite is not worth it, and a client may then see a reset.
 */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, headers);
}

export function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    ...headers,
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/**
 * Reads a JSON request body: `application/json` only (415), at most `limitBytes` (413), UTF-8
 * JSON (400). Returns the parsed value, still untrusted.
 */
export async function readJsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  limitBytes: number,
): Promise<unknown> {
  const mediaType = parseMediaType(req.headers['content-type']);
  if (mediaType === undefined || mediaType.type !== 'application/json') {
    throw new HttpRequestError(415, 'the request body must be JSON, sent as Content-Type: application/json');
  }
  if (mediaType.charset !== undefined && mediaType.charset !== 'utf-8') {
    throw new HttpRequestError(415, 'the request body must be UTF-8');
  }
  const raw = await readBody(req, res, limitBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new HttpRequestError(400, 'the request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // JSON.parse's own message quotes the input; the client has it already.
    throw new HttpRequestError(400, 'the request body is not valid JSON');
  }
}

function parseMediaType(header: string | undefined): { type: string; charset?: string } | undefined {
  if (header === undefined) return undefined;
  const [type = '', ...params] = header.split(';').map((p) => p.trim().toLowerCase());
  const charsetParam = params.find((p) => p.startsWith('charset='));
  const charset = charsetParam?.slice('charset='.length).replace(/^"|"$/g, '');
  return charset === undefined ? { type } : { type, charset };
}

function readBody(req: IncomingMessage, res: ServerResponse, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > DRAIN_LIMIT_BYTES) {
    closeAfterResponse(res);
    return Promise.reject(tooLarge(limitBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > DRAIN_LIMIT_BYTES) {
        closeAfterResponse(res);
        fail(tooLarge(limitBytes));
      } else if (size <= limitBytes) chunks.push(chunk);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      if (size > limitBytes) reject(tooLarge(limitBytes));
      else resolve(Buffer.concat(chunks, size));
    });
    req.on('error', fail);
    req.on('close', () => fail(new Error('the client closed the connection before sending the whole body')));
  });
}

function tooLarge(limitBytes: number): HttpRequestError {
  return new HttpRequestError(413, `the request body must be at most ${limitBytes} bytes`);
}

/** Marks the connection to be closed once the answer is written, instead of kept alive. */
function closeAfterResponse(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('connection', 'close');
}
