// A small REST client for the Kubernetes API (JSON over HTTPS with a bearer token): enough to
// assert exact status codes, bodies, resourceVersions and watch event sequences.
import { Agent, request } from 'node:https';

export interface KubeResponse<T = any> {
  status: number;
  body: T;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Defaults to application/json; patches pass e.g. application/merge-patch+json. */
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: any;
}

export function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class KubeClient {
  private readonly agent: Agent;

  constructor(readonly name: string, readonly port: number, private readonly token: string, private readonly ca: Buffer) {
    // The servers' self-signed serving certificates (from --cert-dir) are the trust roots.
    this.agent = new Agent({ keepAlive: true, maxSockets: 16, ca });
  }

  async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<KubeResponse<T>> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port: this.port, method, path: path + queryString(opts.query), agent: this.agent,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: opts.timeoutMs ?? 30_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let body: any = text;
          if ((res.headers['content-type'] ?? '').includes('json')) {
            try { body = JSON.parse(text); } catch { /* keep text */ }
          }
          resolve({ status: res.statusCode ?? 0, body, text });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${this.name}: ${method} ${path} timed out`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  get<T = any>(path: string, query?: RequestOptions['query']) { return this.request<T>('GET', path, { query }); }
  post<T = any>(path: string, body: unknown) { return this.request<T>('POST', path, { body }); }
  put<T = any>(path: string, body: unknown) { return this.request<T>('PUT', path, { body }); }
  delete<T = any>(path: string, body?: unknown) { return this.request<T>('DELETE', path, { body }); }
  mergePatch<T = any>(path: string, body: unknown) {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  }
  strategicPatch<T = any>(path: string, body: unknown) {
    return this.request<T>('PATCH', path, { body, contentType: 'application/strategic-merge-patch+json' });
  }

  /** Like request(), but throws unless the status is `expected`. */
  async expect<T = any>(status: number, method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const r = await this.request<T>(method, path, opts);
    if (r.status !== status) throw new Error(`${this.name}: ${method} ${path}${queryString(opts.query)} answered ${r.status}, expected ${status}: ${r.text.slice(0, 600)}`);
    return r.body;
  }

  /** Opens a watch (GET with watch=true). Events arrive in `events`; the stream stays open until close(). */
  watch(path: string, query: RequestOptions['query'] = {}): KubeWatch {
    return new KubeWatch(this, path, { ...query, watch: true }, this.agentFor(), this.token);
  }

  /** Watches get their own connection: a long-lived response must not hold a pooled socket. */
  private agentFor(): Agent {
    return new Agent({ keepAlive: false, ca: this.ca });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One open watch: its HTTP status, the decoded events, and waits on them. */
export class KubeWatch {
  readonly events: WatchEvent[] = [];
  status: number | undefined;
  /** The response body when the server refused the watch with a non-200 status. */
  errorBody = '';
  ended = false;
  private readonly listeners = new Set<() => void>();
  private readonly closeFn: () => void;
  readonly opened: Promise<number>;

  constructor(private readonly client: KubeClient, readonly path: string, query: RequestOptions['query'], agent: Agent, token: string) {
    let openedResolve!: (s: number) => void;
    let openedReject!: (e: unknown) => void;
    this.opened = new Promise((res, rej) => { openedResolve = res; openedReject = rej; });
    this.opened.catch(() => {});
    const req = request({
      host: '127.0.0.1', port: client.port, method: 'GET', path: path + queryString(query), agent,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    }, (res) => {
      this.status = res.statusCode;
      openedResolve(res.statusCode ?? 0);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (this.status !== 200) { this.errorBody += c; return; }
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.events.push(JSON.parse(line));
        }
        this.notify();
      });
      const end = () => { this.ended = true; this.notify(); };
      res.on('end', end);
      res.on('close', end);
      res.on('error', end);
    });
    req.on('error', (err) => { openedReject(err); this.ended = true; this.notify(); });
    req.end();
    this.closeFn = () => { req.destroy(); agent.destroy(); };
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  /** Resolves once `pred(events)` holds; rejects after `timeoutMs` (with the events seen) or if the stream ends first. */
  until(pred: (events: WatchEvent[]) => boolean, what: string, timeoutMs = 15_000): Promise<WatchEvent[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred(this.events)) { done(); resolve(this.events); return true; }
        if (this.ended) { done(); reject(new Error(`${this.client.name}: watch ${this.path} ended (status ${this.status} ${this.errorBody.slice(0, 300)}) before ${what}; events: ${summarize(this.events)}`)); return true; }
        return false;
      };
      const timer = setTimeout(() => { done(); reject(new Error(`${this.client.name}: watch ${this.path}: no ${what} within ${timeoutMs} ms; events: ${summarize(this.events)}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.listeners.delete(listener); };
      const listener = () => { check(); };
      if (!check()) this.listeners.add(listener);
    });
  }

  /** Waits for at least `n` events. */
  count(n: number, timeoutMs?: number): Promise<WatchEvent[]> {
    return this.until((e) => e.length >= n, `${n} events`, timeoutMs);
  }

  close(): void {
    this.closeFn();
  }
}

/** "ADDED a@12, MODIFIED a@13" for messages. */
export function summarize(events: WatchEvent[]): string {
  return events.map((e) => `${e.type} ${e.object?.metadata?.name ?? e.object?.code ?? ''}@${e.object?.metadata?.resourceVersion ?? ''}`).join(', ') || '(none)';
}
