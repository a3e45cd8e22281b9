// Shared by the CLIs: the usage of one command, and parseArgs' messages without their long tail.

/** The entries of a usage text ("  prog cmd …" plus its indented continuation lines) for `prog words…`. */
export function usageOf(usage: string, prog: string, words: string[]): string {
  const entries: string[] = [];
  for (const line of usage.split("\n").slice(1)) {
    if (line.startsWith(`  ${prog} `)) entries.push(line);
    else if (entries.length > 0 && /^\s{3,}\S/.test(line)) entries[entries.length - 1] += `\n${line}`;
  }
  for (let n = words.length; n > 0; n--) {
    const prefix = `  ${prog} ${words.slice(0, n).join(" ")}`;
    const hits = entries.filter((e) => e === prefix || e.startsWith(`${prefix} `) || e.startsWith(`${prefix}\n`));
    if (hits.length > 0) return `usage:\n${hits.join("\n")}`;
  }
  return usage;
}

/** True when argv asks for help anywhere (`cmd --help`, `cmd sub -h`). */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

/** "Unknown option '--x'. To specify a positional argument …" → "Unknown option '--x'". */
export function parseArgsMessage(e: Error): string {
  return e.message.replace(/\. To specify a positional.*$/s, "");
}
