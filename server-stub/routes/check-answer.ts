// The check route's answer as JSON, serialized once per answer object: a reused signed manifest (manifest.ts) is
// the same object, so its ~1.5 kB are serialized once a minute, not once a check. The route's own response-schema
// serializer makes the text, so it is byte for byte what fastify would have sent.
import type { FastifyReply } from "fastify";
import type { CheckAnswer } from "../services/updates";

const serialized = new WeakMap<object, { keyListVersion: number | null; json: string }>();

export function sendCheckAnswer(reply: FastifyReply, answer: CheckAnswer): FastifyReply {
  const hit = serialized.get(answer.body);
  if (hit && hit.keyListVersion === answer.keyListVersion) return reply.type("application/json; charset=utf-8").send(hit.json);
  const payload = answer.keyListVersion === null ? answer.body : { ...answer.body, key_list_version: answer.keyListVersion };
  const json = reply.serialize(payload);
  if (typeof json !== "string") throw new Error("the check route's serializer did not make a string");
  serialized.set(answer.body, { keyListVersion: answer.keyListVersion, json });
  return reply.type("application/json; charset=utf-8").send(json);
}
