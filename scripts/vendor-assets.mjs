// Copies the built front-end files RDM serves from node_modules/ into static/vendor/ (and axe-core,
// a test tool, into tests/browser/vendor/), with each package's licence and a README listing them.
// Run through `make assets` (npm ci first); the copied files are committed so nothing else needs Node.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MODULES = join(ROOT, "node_modules");
const STATIC_VENDOR = join(ROOT, "static", "vendor");
const TEST_VENDOR = join(ROOT, "tests", "browser", "vendor");

// Each entry: the npm package, where its files go, which built files to copy, and the licences of
// libraries bundled into those files (copied as LICENSE-<name> beside them).
const VENDORED = [
  {
    name: "@tabler/core",
    dest: join(STATIC_VENDOR, "tabler"),
    files: ["dist/css/tabler.min.css", "dist/js/tabler.min.js"],
    // The npm package ships no LICENSE file: its MIT notice is the banner of the built script.
    licenseFromBanner: "dist/js/tabler.min.js",
    bundled: [{ name: "@popperjs/core", note: "Bootstrap components (MIT) and Popper" }],
  },
  { name: "htmx.org", dest: join(STATIC_VENDOR, "htmx"), files: ["dist/htmx.min.js"] },
  {
    name: "htmx-ext-sse",
    dest: join(STATIC_VENDOR, "htmx-ext-sse"),
    files: ["dist/sse.min.js"],
    // package.json declares no licence; its LICENSE file is the BSD Zero Clause License.
    license: "0BSD",
  },
  {
    name: "chart.js",
    dest: join(STATIC_VENDOR, "chart.js"),
    files: ["dist/chart.umd.min.js"],
    bundled: [{ name: "@kurkle/color", note: "@kurkle/color" }],
  },
  { name: "cytoscape", dest: join(STATIC_VENDOR, "cytoscape"), files: ["dist/cytoscape.min.js"] },
  {
    name: "axe-core",
    dest: join(TEST_VENDOR, "axe-core"),
    files: ["axe.min.js"],
    extraLicenses: ["LICENSE-3RD-PARTY.txt"],
  },
];

const LICENSE_NAMES = ["LICENSE", "LICENSE.md", "LICENSE.txt"];

const MIT_TERMS = `Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE
USE OR OTHER DEALINGS IN THE SOFTWARE.
`;

// The comment forms Django's ManifestStaticFilesStorage follows: a missing .map would fail collectstatic.
const SOURCE_MAP_COMMENTS = [/^\/\/# sourceMappingURL=.*$\n?/gm, /^\/\*# sourceMappingURL=.*\*\/$\n?/gm];

function packageDir(name) {
  return join(MODULES, ...name.split("/"));
}

function readManifest(name) {
  const path = join(packageDir(name), "package.json");
  if (!existsSync(path)) {
    throw new Error(`${name} is not installed: run \`npm ci\` first (or \`make assets\`)`);
  }
  return JSON.parse(readFileSync(path, "utf8"));
}

function findLicense(name) {
  const found = LICENSE_NAMES.map((file) => join(packageDir(name), file)).find(existsSync);
  return found ?? null;
}

function withoutSourceMaps(text) {
  return SOURCE_MAP_COMMENTS.reduce((result, pattern) => result.replace(pattern, ""), text);
}

// Fails when a stylesheet needs files beside it (fonts, images, other sheets) that are not copied.
function assertSelfContained(css, file) {
  const references = [...css.matchAll(/url\(\s*(['"]?)([^'")]+)\1\s*\)|@import\s+(['"])([^'"]+)\3/g)]
    .map((match) => match[2] ?? match[4])
    .filter((target) => !/^(data:|https?:|#)/.test(target));
  if (references.length > 0) {
    throw new Error(`${file} references files that are not vendored: ${references.join(", ")}`);
  }
}

function copyBuiltFile(source, destination) {
  const text = withoutSourceMaps(readFileSync(source, "utf8"));
  if (source.endsWith(".css")) {
    assertSelfContained(text, source);
  }
  writeFileSync(destination, text.endsWith("\n") ? text : `${text}\n`);
}

function licenseFromBanner(entry, manifest) {
  const script = readFileSync(join(packageDir(entry.name), entry.licenseFromBanner), "utf8");
  const copyrights = script.match(/^\s*\*?\s*Copyright .*$/gm);
  if (manifest.license !== "MIT" || !copyrights) {
    throw new Error(`${entry.name}: no LICENSE file and no MIT copyright banner to build one from`);
  }
  const holders = copyrights.map((line) => line.replace(/^\s*\*?\s*/, "")).join("\n");
  return `MIT License\n\n${holders}\n\n${MIT_TERMS}`;
}

function copyLicenses(entry, manifest) {
  const license = findLicense(entry.name);
  if (license) {
    copyFileSync(license, join(entry.dest, "LICENSE"));
  } else if (entry.licenseFromBanner) {
    writeFileSync(join(entry.dest, "LICENSE"), licenseFromBanner(entry, manifest));
  } else {
    throw new Error(`${entry.name} has no licence file`);
  }
  for (const file of entry.extraLicenses ?? []) {
    copyFileSync(join(packageDir(entry.name), file), join(entry.dest, file));
  }
  for (const { name } of entry.bundled ?? []) {
    const bundledLicense = findLicense(name);
    if (!bundledLicense) {
      throw new Error(`${name} (bundled in ${entry.name}) has no licence file`);
    }
    copyFileSync(bundledLicense, join(entry.dest, `LICENSE-${name.replace(/^@/, "").replace("/", "-")}`));
  }
}

function vendor(entry) {
  const manifest = readManifest(entry.name);
  rmSync(entry.dest, { recursive: true, force: true });
  mkdirSync(entry.dest, { recursive: true });
  const copied = entry.files.map((file) => {
    const destination = join(entry.dest, basename(file));
    copyBuiltFile(join(packageDir(entry.name), file), destination);
    return destination;
  });
  copyLicenses(entry, manifest);
  const bundled = (entry.bundled ?? []).map(({ name, note }) => `${note} ${readManifest(name).version}`);
  return {
    name: entry.name,
    version: manifest.version,
    license: entry.license ?? manifest.license,
    paths: copied.map((path) => relative(ROOT, path)),
    bundled,
  };
}

function readme(rows) {
  const table = rows.map(
    (row) =>
      `| ${row.name} | ${row.version} | ${row.license} | ${row.paths.map((path) => `\`${path}\``).join("<br>")} |` +
      ` ${row.bundled.length ? `bundles ${row.bundled.join(", ")}` : ""} |`,
  );
  return `# Vendored front-end libraries

Built files copied from the npm packages pinned in \`package.json\` / \`package-lock.json\`; each
folder holds the package's licence (\`LICENSE\`, plus \`LICENSE-<name>\` for libraries bundled in its
files). Do not edit these files: refresh them with \`make assets\` (needs Node 20 and npm), which runs
\`npm ci && node scripts/vendor-assets.mjs\`, then commit the result. Running RDM needs no Node.

Source-map comments are stripped from the copies (the maps are not vendored). axe-core is a test
tool: it lives in \`tests/browser/vendor/\`, is injected by the browser tests and is never served.

| Package | Version | Licence | Files | Notes |
| --- | --- | --- | --- | --- |
${table.join("\n")}
`;
}

const rows = VENDORED.map(vendor);
writeFileSync(join(STATIC_VENDOR, "README.md"), readme(rows));
for (const row of rows) {
  console.log(`${row.name}@${row.version} -> ${row.paths.join(", ")}`);
}
