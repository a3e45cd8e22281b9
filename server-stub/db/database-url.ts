// --database-url / $OTA_DATABASE_URL: which PostgreSQL, checked before anything connects.

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;
const ENCRYPTED = new Set(["require", "verify-ca", "verify-full"]);

/** Why this URL is refused, or null. Passwords stay out of command lines (use $OTA_DATABASE_URL or $PGPASSWORD);
 * a database off this machine is reached over TLS only (sslmode), as everything else the server speaks. */
export function databaseUrlProblem(value: string, fromCommandLine: boolean): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "the database URL must look like postgres://user@host:5432/dbname";
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") return "the database URL must start with postgres:// or postgresql://";
  if (fromCommandLine && url.password) return "--database-url must not carry a password: others can read the command line; set $OTA_DATABASE_URL or $PGPASSWORD";
  const socketDir = url.searchParams.get("host")?.startsWith("/");
  const host = url.hostname || (socketDir ? "" : "localhost");
  if (host && !LOOPBACK.test(host) && !ENCRYPTED.has(url.searchParams.get("sslmode") ?? "")) {
    return `the database at ${host} would be reached in clear: add ?sslmode=verify-full (and sslrootcert=FILE for a private CA)`;
  }
  return null;
}
