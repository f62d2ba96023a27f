// Config problems as `file:line: key.path: message`, the format of `check-config` (SPEC).
// A problem is first a ConfigIssue (a key path into the YAML plus a message, from zod, the secret
// resolver or the YAML parser); ConfigLocator finds the line by walking the parsed document.

import { isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node, Pair, YAMLError } from 'yaml';
import type { z } from 'zod';
import { closestKey, knownKeysAt } from './suggest.js';

export interface ConfigIssue {
  path: readonly PropertyKey[];
  message: string;
  /** point at the key itself (unknown or duplicate key) rather than at its value */
  atKey?: boolean;
}

export interface SourcePosition {
  line: number;
  col: number;
}

/** A finished `file:line: ...` message and where it points, for sorting into file order. */
export interface LocatedMessage extends SourcePosition {
  text: string;
}

/** In file order, each message once. */
export function inFileOrder(messages: readonly LocatedMessage[]): string[] {
  const ordered = [...messages].sort((a, b) => a.line - b.line || a.col - b.col);
  return [...new Set(ordered.map((message) => message.text))];
}

/** `policies.images.maxFileSize`, `routes[0].policy` */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(String(segment))) text += text === '' ? String(segment) : `.${String(segment)}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}

function nodeStart(node: unknown): number | undefined {
  const range = (node as Node | null)?.range;
  return range === undefined || range === null ? undefined : range[0];
}

function findPair(map: { items: Pair[] }, key: PropertyKey): Pair | undefined {
  // Compare as text: YAML `404:` is the number 404, but zod reports the record key "404".
  return map.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === String(key));
}

export class ConfigLocator {
  readonly #doc: Document;
  readonly #lineCounter: LineCounter;
  readonly #source: string;

  constructor(doc: Document, lineCounter: LineCounter, source: string) {
    this.#doc = doc;
    this.#lineCounter = lineCounter;
    this.#source = source;
  }

  positionAt(offset: number): SourcePosition {
    return this.#lineCounter.linePos(offset);
  }

  /**
   * Line of the value at `path` (of its key when atKey or the value is empty). For a key that is
   * missing, the line of the nearest existing ancestor's key, e.g. `images:` for a policy.
   */
  positionOf(path: readonly PropertyKey[], atKey = false): SourcePosition {
    let node: unknown = this.#doc.contents;
    let anchor = nodeStart(node) ?? 0;
    for (const [index, segment] of path.entries()) {
      if (isMap(node)) {
        const pair = findPair(node, segment);
        if (pair === undefined) return this.positionAt(anchor);
        anchor = nodeStart(pair.key) ?? anchor;
        node = pair.value;
        if (atKey && index === path.length - 1) return this.positionAt(anchor);
      } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
        node = node.items[segment];
        anchor = nodeStart(node) ?? anchor;
      } else {
        return this.positionAt(anchor);
      }
    }
    return this.positionAt(nodeStart(node) ?? anchor);
  }

  format(issue: ConfigIssue): LocatedMessage {
    const position = this.positionOf(issue.path, issue.atKey);
    const where = issue.path.length === 0 ? '' : `${formatKeyPath(issue.path)}: `;
    return { ...position, text: `${this.#source}:${position.line}: ${where}${issue.message}` };
  }

  /** Key path of the mapping key that starts at `offset` (where the YAML parser reports a duplicate). */
  pathOfKeyAt(offset: number): PropertyKey[] | null {
    const search = (node: unknown, path: PropertyKey[]): PropertyKey[] | null => {
      if (isMap(node)) {
        for (const pair of node.items) {
          const key = isScalar(pair.key) ? String(pair.key.value) : '?';
          if (nodeStart(pair.key) === offset) return [...path, key];
          const found = search(pair.value, [...path, key]);
          if (found !== null) return found;
        }
      } else if (isSeq(node)) {
        for (const [index, item] of node.items.entries()) {
          const found = search(isPair(item) ? item.value : item, [...path, index]);
          if (found !== null) return found;
        }
      }
      return null;
    };
    return search(this.#doc.contents, []);
  }
}

/** One YAML parser error as a formatted line. */
export function formatYamlError(error: YAMLError, locator: ConfigLocator, source: string): LocatedMessage {
  const offset = error.pos[0];
  const position = locator.positionAt(offset);
  if (error.code === 'DUPLICATE_KEY') {
    // The position is the second occurrence's; a path lookup by name would find the first one.
    const path = locator.pathOfKeyAt(offset);
    if (path !== null) {
      return { ...position, text: `${source}:${position.line}: ${formatKeyPath(path)}: duplicate key (each key may appear once)` };
    }
  }
  return { ...position, text: `${source}:${position.line}: ${error.message}` };
}

/** zod issues as ConfigIssues: one per unknown key, with a "did you mean" where one is close. */
export function issuesFromZod(issues: readonly z.core.$ZodIssue[], schema: z.ZodType): ConfigIssue[] {
  return issues.flatMap((issue): ConfigIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      return issue.keys.map((key) => {
        const suggestion = closestKey(key, known);
        const hint = suggestion === null ? (known.length > 0 ? ` (known keys: ${known.join(', ')})` : '') : ` (did you mean "${suggestion}"?)`;
        return { path: [...issue.path, key], message: `unknown key${hint}`, atKey: true };
      });
    }
    if (issue.code === 'invalid_key') {
      // zod's own text is just "Invalid key in record"; the nested issue says why.
      return [{ path: issue.path, message: issue.issues[0]?.message ?? issue.message, atKey: true }];
    }
    return [{ path: issue.path, message: issue.message }];
  });
}

/** Per-parse zod error map: a missing key reads better than "expected string, received undefined". */
export function missingKeyMessage(issue: z.core.$ZodRawIssue): string | undefined {
  return issue.code === 'invalid_type' && issue.input === undefined ? 'missing required key' : undefined;
}
