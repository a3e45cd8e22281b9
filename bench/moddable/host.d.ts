// Types of host.js (host functions in host-lin.c).
export default class Host {
  private constructor();
  static env(name: string): string | undefined;
  static markIdle(): void;
  static finish(code: number, outcome: string): never;
}
