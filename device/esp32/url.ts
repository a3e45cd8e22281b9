// A minimal URL split for the clients below (XS has no WHATWG URL without an extra module).

export interface ParsedUrl {
  scheme: string;
  host: string;
  port: number;
  /** Path and query, at least "/". */
  path: string;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, mqtt: 1883, mqtts: 8883 };

export function parseUrl(url: string): ParsedUrl {
  const m = /^([a-z]+):\/\/([^/:?#]+)(?::(\d+))?([^#]*)/i.exec(url);
  if (!m) throw new Error(`bad URL: ${url}`);
  const scheme = m[1].toLowerCase();
  const port = m[3] ? parseInt(m[3], 10) : DEFAULT_PORTS[scheme];
  if (port === undefined) throw new Error(`no default port for ${scheme}: ${url}`);
  const rest = m[4] || "/";
  return { scheme, host: m[2], port, path: rest.startsWith("/") ? rest : "/" + rest };
}
