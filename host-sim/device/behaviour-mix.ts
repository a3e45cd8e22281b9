// Which way a simulated firmware behaves on a given device. A fleet shares one image per version, so "this
// release fails its self-test on most boards" cannot be a single behaviour baked into the image. Two knobs:
//
//  * the image's sim payload may carry a `mix` ({ "fail-self-test": 0.8 }, fractions of the fleet, the rest
//    "healthy") and an optional `mix_seed`: each device picks its behaviour from a hash of its id, the image
//    version and the seed — the same device always behaves the same way with the same image;
//  * a device may have a board behaviour (`ota-sim fleet --mix`): how every image other than its factory
//    image runs on it (a board that rejects any update). The factory image always runs healthy.
//
// An explicit non-healthy `behaviour` in the image wins over both.
import { BEHAVIOURS, type Behaviour, type SimPayload } from "../../esp-image/app-image";

export type BehaviourMix = Partial<Record<Behaviour, number>>;
const NAMES = BEHAVIOURS;

/** "healthy=0.9,fail-self-test=0.05,crash=0.05" → fractions; the remainder up to 1 is healthy. */
export function parseMix(text: string): BehaviourMix {
  const mix: BehaviourMix = {};
  let sum = 0;
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [name, value] = part.split("=").map((s) => s.trim());
    if (!NAMES.includes(name as Behaviour)) throw new Error(`--mix: unknown behaviour "${name}" (one of ${NAMES.join(", ")})`);
    const f = Number(value);
    if (!Number.isFinite(f) || f < 0 || f > 1) throw new Error(`--mix: ${name} needs a fraction between 0 and 1, got "${value}"`);
    mix[name as Behaviour] = f;
    sum += f;
  }
  if (sum > 1 + 1e-9) throw new Error(`--mix: fractions add up to ${sum}, more than 1`);
  return mix;
}

/** FNV-1a of the key, scrambled: a uniform, stable number in [0, 1). */
export function unitHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Walks the fractions (in a fixed order, healthy last) with a point in [0, 1). */
export function pickBehaviour(mix: BehaviourMix, u: number): Behaviour {
  let at = 0;
  for (const name of ["fail-self-test", "crash", "hang", "crash-after-confirm"] as const) {
    at += mix[name] ?? 0;
    if (u < at) return name;
  }
  return "healthy";
}

/** The board side of the fleet mix: seeded per device index, so a run replays. */
export function boardBehaviour(mix: BehaviourMix, seed: number, deviceId: string): Behaviour {
  return pickBehaviour(mix, unitHash(`board/${seed}/${deviceId}`));
}

export interface BehaviourContext {
  deviceId: string;
  version: string | null;
  /** The device's board behaviour for non-factory images (fleet `--mix`). */
  board?: Behaviour;
  /** The image the device left the factory with; it always runs healthy. */
  factoryVersion?: string;
}

/** How the booted image behaves on this device. */
export function firmwareBehaviour(sim: SimPayload | null, ctx: BehaviourContext): Behaviour {
  const declared = sim?.behaviour ?? "healthy";
  if (declared !== "healthy") return declared;
  const mix = sim?.mix;
  if (mix && typeof mix === "object") {
    const picked = pickBehaviour(mix as BehaviourMix, unitHash(`image/${String(sim.mix_seed ?? "")}/${ctx.version ?? ""}/${ctx.deviceId}`));
    if (picked !== "healthy") return picked;
  }
  if (ctx.board && ctx.board !== "healthy" && ctx.version !== (ctx.factoryVersion ?? "1.0.0")) return ctx.board;
  return "healthy";
}
