#!/usr/bin/env node
// Adds to package-lock.json the platform-specific optional packages that npm left out.
//
// npm records only the optional dependencies it could resolve (npm/cli #4828, #8320), and
// the registry mirror this project is built with carries some packages only for the
// platforms it serves; yet `npm ci` refuses a lock that lacks the others. Run this after
// any change to the dependencies: `node .ci/complete-lockfile.mjs`.
//
// For each missing package it takes version, integrity and platform fields from the
// registry when the registry has it; otherwise it records the version the parent pins and
// the platform its conventional name states (e.g. @deno/darwin-arm64: os darwin, cpu
// arm64), without an integrity hash. Installs skip entries for other platforms exactly as
// npm would; on those platforms npm fetches them by version.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const packages = lock.packages;
let added = 0;

function fromRegistry(name, range) {
  try {
    const fields = ["version", "dist.integrity", "os", "cpu", "libc", "license", "engines"];
    const view = JSON.parse(
      execFileSync("npm", ["view", `${name}@${range}`, ...fields, "--json"], { encoding: "utf8", stdio: "pipe" }),
    );
    const info = Array.isArray(view) ? view.at(-1) : view;
    return { ...info, integrity: info["dist.integrity"] };
  } catch {
    return undefined;
  }
}

function fromName(name, range) {
  const platform =
    /(darwin|linux|win32|freebsd|android|openbsd|sunos|aix)-(x64|arm64|arm|ia32|ppc64|s390x|riscv64)(?:-(glibc|gnu|musl|msvc))?$/
      .exec(name);
  if (!platform || !/^\d+\.\d+\.\d+$/.test(range)) {
    throw new Error(`${name}@${range}: not in the registry and its platform is not in its name; add it by hand`);
  }
  const [, os, cpu, libc] = platform;
  return { version: range, os: [os], cpu: [cpu], libc: libc ? [libc === "gnu" ? "glibc" : libc] : undefined };
}

for (const [path, entry] of Object.entries(packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${path ? path + "/" : ""}node_modules/${name}`;
    if (packages[nested] || packages[`node_modules/${name}`]) continue;
    const info = fromRegistry(name, range) ?? fromName(name, range);
    packages[`node_modules/${name}`] = Object.fromEntries(
      Object.entries({
        version: info.version,
        integrity: info.integrity,
        cpu: info.cpu,
        dev: entry.dev,
        libc: info.libc,
        license: info.license,
        optional: true,
        os: info.os,
        engines: info.engines,
      }).filter(([, value]) => value !== undefined),
    );
    added++;
    console.log(`added node_modules/${name}@${info.version}${info.integrity ? "" : " (derived from its name)"}`);
  }
}

lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + "\n");
console.log(`${added} entries added`);
