// The process-wide structured logger: pino JSON lines on stdout, one object per event.
// Every line logged inside an RPC carries the trace and span id of the active OpenTelemetry span,
// so a log line can be joined with its trace (and with the same request on other tree nodes).
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import pino from 'pino';

const DEFAULT_LEVEL = 'info';

/** Trace correlation fields for the span active where the log call happens, if any. */
export function traceFields(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

function initialLevel(): string {
  const requested = process.env.LOG_LEVEL?.trim().toLowerCase();
  if (!requested) return DEFAULT_LEVEL;
  // A typo in LOG_LEVEL must not take the process down before it can say so.
  return requested in pino.levels.values || requested === 'silent' ? requested : DEFAULT_LEVEL;
}

export const log: pino.Logger = pino({
  level: initialLevel(),
  // Level names ("warn") rather than numbers: what log pipelines and humans filter on.
  formatters: { level: (label) => ({ level: label }) },
  timestamp: pino.stdTimeFunctions.isoTime,
  mixin: traceFields,
});

if (process.env.LOG_LEVEL && log.level !== process.env.LOG_LEVEL.trim().toLowerCase()) {
  log.warn({ LOG_LEVEL: process.env.LOG_LEVEL }, `unknown LOG_LEVEL, using '${DEFAULT_LEVEL}'`);
}

/** Changes the level at runtime (e.g. from a flag or an admin endpoint). Throws on an unknown level. */
export function setLogLevel(level: string): void {
  const normalized = level.trim().toLowerCase();
  if (!(normalized in log.levels.values) && normalized !== 'silent') {
    throw new Error(`unknown log level '${level}' (expected one of ${Object.keys(log.levels.values).join(', ')}, silent)`);
  }
  log.level = normalized;
}
