// Route path patterns, matched against the normalised request path (see SPEC "On the wire").
//
//   /upload         exact: matches "/upload" only (not "/upload/", not "/upload/x"); case-sensitive
//   /api/files/*    prefix: matches every path that starts with "/api/files/" — "/api/files/",
//                   "/api/files/x", "/api/files/x/y" — but not "/api/files" itself (list that
//                   separately if the upstream accepts uploads there too)
//   /*              every path
//
// Patterns are compiled to closures once; nothing is built per request.

/** Why a pattern is unusable, or null when it is fine. */
export function routePatternProblem(pattern: string): string | null {
  if (!pattern.startsWith('/')) return `path "${pattern}" must start with "/"`;
  if (/[?#]/.test(pattern)) return `path "${pattern}" must not contain a query or fragment`;
  const wildcard = pattern.indexOf('*');
  if (wildcard >= 0 && (wildcard !== pattern.length - 1 || !pattern.endsWith('/*'))) {
    return `path "${pattern}": "*" is only allowed as a final "/*" segment (prefix match)`;
  }
  // Requests are matched after normalisation, so a pattern that is not itself normalised could
  // never match and would silently let uploads through unfiltered.
  const segments = (wildcard >= 0 ? pattern.slice(1, -2) : pattern.slice(1)).split('/');
  const inner = pattern.endsWith('/') ? segments.slice(0, -1) : segments;
  if (pattern !== '/' && pattern !== '/*' && inner.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return `path "${pattern}" is not normalised: no empty, "." or ".." segments (requests are matched after normalisation)`;
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(pattern)) return `path "${pattern}" contains an invalid percent-escape`;
  const encodedUnreserved = /%[0-9A-Fa-f]{2}/g;
  for (const escape of pattern.match(encodedUnreserved) ?? []) {
    const char = String.fromCharCode(parseInt(escape.slice(1), 16));
    if (/[A-Za-z0-9\-._~]/.test(char)) {
      return `path "${pattern}" is not normalised: write "${char}" instead of "${escape}" (requests are matched after normalisation)`;
    }
  }
  return null;
}

/** Compiles a pattern already accepted by routePatternProblem. */
export function compilePathPattern(pattern: string): (normalisedPath: string) => boolean {
  if (pattern.endsWith('/*')) {
    const prefix = pattern.slice(0, -1); // keeps the trailing "/"
    return (path) => path.startsWith(prefix);
  }
  return (path) => path === pattern;
}
