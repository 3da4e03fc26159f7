/**
 * Image references as Docker parses them: `[registry[:port]/]name[:tag][@digest]`.
 * Grammar from the distribution reference package; digests as the OCI image spec
 * writes them (`algorithm:encoded`), with the registered algorithms' exact lengths.
 */

const alnum = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const component = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const tag = "[\\w][\\w.-]{0,127}";
const digest = "[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+";
/** Registered digest algorithms and their encoded form. */
const DIGEST_ENCODINGS: Record<string, { re: RegExp; what: string }> = {
  sha256: { re: /^[a-f0-9]{64}$/, what: "64 lowercase hex digits" },
  sha512: { re: /^[a-f0-9]{128}$/, what: "128 lowercase hex digits" },
};
const reference = new RegExp(
  `^(?:(${domain})/)?(${component}(?:/${component})*)(?::(${tag}))?(?:@(${digest}))?$`,
);

export interface ImageRef {
  /** Registry host[:port], when the first path component names one. */
  domain?: string;
  /** Repository path without the registry. */
  path: string;
  tag?: string;
  digest?: string;
}

/** Parses an image reference; returns the reason when it is malformed. */
export function parseImageRef(ref: string): ImageRef | { error: string } {
  if (ref.length === 0) return { error: "must not be empty" };
  if (ref.length > 512) return { error: "is longer than 512 characters" };
  const m = reference.exec(ref);
  if (!m)
    return { error: "is not a valid image reference (expected name[:tag][@digest], lowercase)" };
  let dom: string | undefined = m[1];
  let path = m[2]!;
  const t = m[3];
  const d = m[4];
  // "a/b": "a" is a registry only when it looks like a host (has a dot or port, or is localhost).
  // Stryker disable next-line Regex: the domain grammar allows "[" only first, so anchoring it changes nothing
  if (dom !== undefined && !/[.:]|^localhost$|^\[/.test(dom)) {
    if (!new RegExp(`^${component}$`).test(dom)) return { error: "is not a valid image reference" };
    path = `${dom}/${path}`;
    dom = undefined;
  }
  if (path.length > 255) return { error: "has a repository name longer than 255 characters" };
  if (d !== undefined) {
    const at = d.indexOf(":");
    const algorithm = d.slice(0, at);
    // Other algorithms follow the grammar only; the engine says whether it knows them.
    const encoding = DIGEST_ENCODINGS[algorithm];
    if (encoding !== undefined && !encoding.re.test(d.slice(at + 1)))
      return { error: `has a ${algorithm} digest that is not ${encoding.what}` };
  }
  return { domain: dom, path, tag: t, digest: d };
}

/** The reference with the implied `latest` tag made explicit when neither tag nor digest is given. */
export function normalizeImageRef(ref: ImageRef): string {
  const name = ref.domain ? `${ref.domain}/${ref.path}` : ref.path;
  if (ref.digest) return `${name}${ref.tag ? `:${ref.tag}` : ""}@${ref.digest}`;
  return `${name}:${ref.tag ?? "latest"}`;
}

/** Glob match for `allowed_images` patterns: `*` matches any run of characters. */
export function imageAllowed(image: string, patterns: readonly string[]): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((p) => patternRegExp(p).test(image));
}

/** Patterns come from the config, so compiling each once is bounded. */
const compiled = new Map<string, RegExp>();

function patternRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  // Stryker disable next-line ConditionalExpression: compiling again gives the same expression; the map only saves the work
  if (!re)
    compiled.set(
      pattern,
      (re = new RegExp(`^${pattern.split("*").map(escapeRegExp).join(".*")}$`)),
    );
  return re;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
