/**
 * The Markdown files: every relative link points at a file that exists (and at a heading there,
 * when it names one), and the README stays short enough to read (at most 300 lines).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const FILES = [
  "README.md",
  "bench/README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** The relative links of a Markdown text (code blocks and inline code left out). */
export function relativeLinks(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((l) => !/^[a-z]+:/i.test(l));
}

describe("the Markdown files", () => {
  it("link only to files and headings that exist", () => {
    const broken: string[] = [];
    for (const file of FILES) {
      for (const link of relativeLinks(readFileSync(file, "utf8"))) {
        const [path, anchor] = link.split("#") as [string, string | undefined];
        const target = path === "" ? file : join(dirname(file), path);
        if (!existsSync(target)) {
          broken.push(`${file}: ${link} (no such file)`);
          continue;
        }
        if (anchor !== undefined && target.endsWith(".md")) {
          const headings = readFileSync(target, "utf8")
            .split("\n")
            .filter((l) => /^#{1,6} /.test(l))
            .map((l) => slug(l.replace(/^#+ /, "")));
          if (!headings.includes(anchor)) broken.push(`${file}: ${link} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
    expect(FILES.length).toBeGreaterThan(5);
  });

  it("the check sees a broken link, a missing heading, and no link inside code", () => {
    expect(
      relativeLinks(
        "[a](docs/x.md) and [b](https://example.org) `[c](nope.md)`\n```\n[d](no.md)\n```\n[e](#top)",
      ),
    ).toEqual(["docs/x.md", "#top"]);
    expect(slug("Checking a host: `doctor`")).toBe("checking-a-host-doctor");
    expect(slug("The host's own resources")).toBe("the-hosts-own-resources");
    expect(existsSync(resolve("docs/no-such-file.md"))).toBe(false);
  });

  it("the README is at most 300 lines and links every document in docs/", () => {
    const readme = readFileSync("README.md", "utf8");
    expect(readme.split("\n").length).toBeLessThanOrEqual(300);
    for (const f of readdirSync("docs").filter((x) => x.endsWith(".md")))
      expect(relativeLinks(readme)).toContain(`docs/${f}`);
  });
});
