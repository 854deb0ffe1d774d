import { connect, Socket } from 'node:net';

/**
 * A lean keep-alive HTTP/1.1 client for the load generators. The load shares the 2 cores with the
 * servers it measures, so what it costs per request is taken from them: Node's `http.request` cost the
 * publishers about 0.2 ms of CPU per request (docs/performance.md), this about a third of that. Each
 * request is one `write` of head and body on a pooled socket with one request outstanding; the answer is
 * read by its `Content-Length`, or chunked.
 */
export interface HttpAnswer {
  status: number;
  body: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');

class Connection {
  readonly socket: Socket;
  private buffered: Buffer | null = null;
  private waiter: { resolve: (answer: HttpAnswer) => void; reject: (error: Error) => void } | null = null;
  private closing = false;
  /** When it was last returned to the pool. */
  idleSince = 0;

  constructor(
    readonly origin: string,
    host: string,
    port: number,
    private readonly release: (connection: Connection) => void,
    private readonly forget: (connection: Connection) => void,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new Error('socket hang up')));
  }

  send(request: string, resolve: (answer: HttpAnswer) => void, reject: (error: Error) => void): void {
    this.waiter = { resolve, reject };
    this.socket.ref();
    this.socket.write(request);
  }

  private read(chunk: Buffer): void {
    if (!this.waiter) {
      this.socket.destroy(new Error('answer to no request'));
      return;
    }
    const data = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    const headEnd = data.indexOf(HEADER_END);
    if (headEnd < 0) {
      this.buffered = data;
      return;
    }
    const head = data.toString('latin1', 0, headEnd);
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    let body: string | null;
    if (length) {
      const end = headEnd + 4 + Number(length[1]);
      if (data.length < end) {
        this.buffered = data;
        return;
      }
      body = data.toString('utf8', headEnd + 4, end);
    } else if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
      try {
        body = readChunked(data, headEnd + 4);
      } catch (error) {
        this.socket.destroy(error as Error);
        return;
      }
      if (body === null) {
        this.buffered = data;
        return;
      }
    } else {
      this.socket.destroy(new Error(`answer without a length: ${head.split('\r\n', 1)[0]}`));
      return;
    }
    this.buffered = null;
    const waiter = this.waiter;
    this.waiter = null;
    this.closing = /\r\nconnection:[ \t]*close/i.test(head);
    waiter?.resolve({ status: Number(head.slice(9, 12)), body });
    if (this.closing) this.socket.end();
    else {
      this.socket.unref(); // an idle pooled connection does not keep the process alive
      this.idleSince = Date.now();
      this.release(this);
    }
  }

  private fail(error: Error): void {
    this.forget(this);
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }
}

/** A whole chunked body from `at`, or null while it is still arriving (trailers are not expected). */
function readChunked(data: Buffer, at: number): string | null {
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const size = parseInt(data.toString('latin1', at, lineEnd), 16);
    if (!Number.isFinite(size) || size < 0) throw new Error('malformed chunked answer');
    if (size === 0) {
      if (data.length < lineEnd + 4) return null;
      return Buffer.concat(parts).toString('utf8');
    }
    if (data.length < lineEnd + 2 + size + 2) return null;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

const idle = new Map<string, Connection[]>();

/** Node's HTTP server closes a keep-alive connection idle for 5 s: one idle for 4 s is not reused. */
const IDLE_REUSE_MS = 4000;

function connectionTo(target: URL): Connection {
  const origin = `${target.hostname}:${target.port}`;
  const list = idle.get(origin);
  for (let reuse = list?.pop(); reuse; reuse = list?.pop()) {
    if (Date.now() - reuse.idleSince < IDLE_REUSE_MS) return reuse;
    reuse.socket.destroy();
  }
  return new Connection(
    origin,
    target.hostname,
    Number(target.port),
    (connection) => {
      let list = idle.get(connection.origin);
      if (!list) idle.set(connection.origin, (list = []));
      list.push(connection);
    },
    (connection) => {
      const list = idle.get(connection.origin);
      const at = list?.indexOf(connection) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    },
  );
}

/** POSTs JSON and reads the whole answer; rejects when the connection fails before it comes. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const data = JSON.stringify(body);
  const target = new URL(url);
  let head = `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return new Promise((resolve, reject) => connectionTo(target).send(`${head}\r\n${data}`, resolve, reject));
}
