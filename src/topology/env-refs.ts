// `${ENV_VAR}` references in topology strings (secrets such as database passwords). The
// expanded value is used to connect and never logged; printing uses the unexpanded text.
export function expandEnvRefs(text: string, env: NodeJS.ProcessEnv, onMissing: (name: string) => never): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const value = env[name];
    if (value === undefined) onMissing(name);
    return value as string;
  });
}

/** A URL for logs and printouts: the password replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}
