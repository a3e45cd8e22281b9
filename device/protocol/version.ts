// Semver-ish version comparison shared by server and device.
// Accepts an optional leading "v", any number of dot-separated numeric components,
// an optional "-prerelease" and an optional "+build" (ignored), e.g. "v1.2", "1.2.0-rc.1".

export interface ParsedVersion {
  numbers: number[];
  prerelease: string[];
}

const VERSION_RE = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseVersion(text: string): ParsedVersion | null {
  const m = VERSION_RE.exec(text.trim());
  if (!m) return null;
  const numbers = m[1]!.split(".").map((p) => parseInt(p, 10));
  if (numbers.some((n) => !Number.isSafeInteger(n))) return null;
  return { numbers, prerelease: m[2] ? m[2].split(".") : [] };
}

/**
 * Returns <0, 0 or >0 like a sort comparator, or null when either side does not parse:
 * callers must decide what "incomparable" means (the device treats it as "not newer").
 * Missing numeric components count as 0 ("1.2" == "1.2.0"); a prerelease sorts before its release.
 */
export function compareVersions(a: string, b: string): number | null {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return null;
  const len = Math.max(pa.numbers.length, pb.numbers.length);
  for (let i = 0; i < len; i++) {
    const d = (pa.numbers[i] ?? 0) - (pb.numbers[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return comparePrerelease(pa.prerelease, pb.prerelease);
}

function comparePrerelease(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 0 : a.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) {
      const d = parseInt(x, 10) - parseInt(y, 10);
      if (d !== 0) return d < 0 ? -1 : 1;
    } else if (xn !== yn) {
      return xn ? -1 : 1; // numeric identifiers sort before alphanumeric ones (semver 11.4.3)
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/** True when `candidate` is strictly newer than `current`; false when incomparable. */
export function isNewerVersion(candidate: string, current: string): boolean {
  const c = compareVersions(candidate, current);
  return c !== null && c > 0;
}

/** True when min <= version <= max (either bound may be null/empty = unbounded); false when incomparable. */
export function versionInRange(version: string, min: string | null | undefined, max: string | null | undefined): boolean {
  if (min) {
    const c = compareVersions(version, min);
    if (c === null || c < 0) return false;
  }
  if (max) {
    const c = compareVersions(version, max);
    if (c === null || c > 0) return false;
  }
  return true;
}
