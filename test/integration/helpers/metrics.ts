// Reads the node's HTTP endpoints (/healthz, /readyz, /metrics) on its metrics port.

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') };
}

export interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses Prometheus text exposition format into samples (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(port: number): Promise<Sample[]> {
  const r = await httpGet(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body.slice(0, 200)}`);
  return parseMetrics(r.body);
}

/** Sum of all samples of one metric (over all label sets); undefined if the metric is absent. */
export async function metricSum(port: number, name: string): Promise<number | undefined> {
  const samples = (await scrape(port)).filter((s) => s.name === name);
  return samples.length === 0 ? undefined : samples.reduce((a, s) => a + s.value, 0);
}
