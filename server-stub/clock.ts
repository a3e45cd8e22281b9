// Injectable time source: the campaign engine and every timestamp go through it so
// tests can run hours of campaign time in milliseconds.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; listeners run after each advance (the server ticks its engine). */
export class ManualClock implements Clock {
  private listeners: Array<() => void> = [];
  constructor(private ms: number = Date.parse("2025-10-01T00:00:00Z")) {}
  now(): number {
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
    for (const l of this.listeners) l();
  }
  advance(ms: number): void {
    this.set(this.ms + ms);
  }
  advanceMinutes(min: number): void {
    this.advance(min * 60_000);
  }
  onChange(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }
}

export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
