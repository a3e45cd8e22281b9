// REST calls with the operator's credential. The credential lives in sessionStorage: it goes when the tab goes.
// Paths mirror device/protocol/paths.ts (ROUTES), which is TypeScript and so not loadable here as it is.

const KEY = "ota.credential";
export const API = "/api/v1";
const enc = encodeURIComponent;

export const paths = {
  whoami: () => `${API}/auth/whoami`,
  stats: () => `${API}/stats`,
  devices: (limit = 1000) => `${API}/devices?limit=${limit}`,
  device: (id) => `${API}/devices/${enc(id)}`,
  deviceUpdates: (id) => `${API}/devices/${enc(id)}/updates?limit=50`,
  firmwareList: () => `${API}/firmware?limit=200`,
  groups: () => `${API}/groups`,
  campaigns: () => `${API}/campaigns?limit=200`,
  campaign: (id) => `${API}/campaigns/${enc(id)}`,
  campaignDevices: (id) => `${API}/campaigns/${enc(id)}/devices`,
  campaignStats: (id) => `${API}/stats/campaigns/${enc(id)}`,
  campaignAction: (id, action) => `${API}/campaigns/${enc(id)}/${enc(action)}`,
  events: (query = "") => `${API}/events${query}`,
};

/** An API key (X-API-Key) or a JWT (Bearer): JWTs are three base64url parts joined by dots. */
export function authHeaders(credential = getCredential()) {
  if (!credential) return {};
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(credential) ? { Authorization: `Bearer ${credential}` } : { "X-API-Key": credential };
}

export const getCredential = () => sessionStorage.getItem(KEY);
export const setCredential = (c) => sessionStorage.setItem(KEY, c);
export const clearCredential = () => sessionStorage.removeItem(KEY);

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(`${message} (${status} ${code})`);
    this.status = status;
    this.code = code;
  }
}

/** JSON in and out; a FormData body goes as multipart. Errors become ApiFailure with the server's code. */
export async function api(method, path, body) {
  const headers = { ...authHeaders(), Accept: "application/json" };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiFailure(res.status, data?.error?.code ?? "HTTP_ERROR", data?.error?.message ?? res.statusText);
  return data;
}

/** What each role may do; the server enforces the same rules (route config roles), this only hides buttons. */
export const can = (role, what) => ({
  write: role === "admin" || role === "operator",
}[what] ?? false);
