// "Did you mean" for unknown config keys: zod's unrecognized_keys issue says which keys are
// unknown but not which ones were expected, so the known keys are read back from the schema.

import { z } from 'zod';

/** Object shapes reachable at `path`, looking through optional/default/pipe/union wrappers. */
function objectsAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject[] {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    return objectsAt(schema.unwrap() as z.ZodType, path);
  }
  if (schema instanceof z.ZodPipe) return objectsAt(schema.in as z.ZodType, path);
  if (schema instanceof z.ZodUnion) return schema.options.flatMap((option) => objectsAt(option as z.ZodType, path));
  if (path.length === 0) return schema instanceof z.ZodObject ? [schema] : [];
  const [head, ...rest] = path;
  if (schema instanceof z.ZodObject && typeof head === 'string') {
    const child = (schema.shape as Record<string, z.ZodType | undefined>)[head];
    return child === undefined ? [] : objectsAt(child, rest);
  }
  if (schema instanceof z.ZodArray) return objectsAt(schema.element as z.ZodType, rest);
  if (schema instanceof z.ZodRecord) return objectsAt(schema.valueType as z.ZodType, rest);
  return [];
}

export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  return [...new Set(objectsAt(schema, path).flatMap((object) => Object.keys(object.shape)))];
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The known key a typo most likely meant, or null when nothing is close. */
export function closestKey(typo: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(typo.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Allow about one edit per three characters: "maxFielSize" -> "maxFileSize", but not "foo" -> "mode".
  return best !== null && bestDistance <= Math.max(1, Math.floor(typo.length / 3)) ? best : null;
}
