// A local medshare network for tests: the one the test command started (MEDSHARE_TESTNET, its
// authorities' passphrase in MEDSHARE_TESTNET_PASSPHRASE), or a new two-validator one started
// here with the CLI (`medshare testnet init` + `testnet up`) and stopped by `stop()`.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = process.env.MEDSHARE_CLI ?? join(ROOT, "target/release/medshare");

export async function testnet() {
  if (process.env.MEDSHARE_TESTNET) {
    const dir = process.env.MEDSHARE_TESTNET;
    return { dir, passphrase: process.env.MEDSHARE_TESTNET_PASSPHRASE, layout: layout(dir), stop: async () => {} };
  }
  const passphrase = "testnet passphrase of a test";
  const dir = join(mkdtempSync(join(tmpdir(), "medshare-net-")), "net");
  const env = { ...process.env, MEDSHARE_PASSPHRASE: passphrase };
  execFileSync(CLI, ["testnet", "init", "--dir", dir, "--validators", "2", "--base-port", "0"], { cwd: ROOT, env, stdio: "pipe" });
  const up = spawn(CLI, ["testnet", "up", "--dir", dir], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  up.stderr.on("data", (d) => (err += d));
  await new Promise((resolve, reject) => {
    let out = "";
    up.stdout.on("data", (d) => {
      out += d;
      if (out.includes("is up")) resolve();
    });
    up.on("exit", (code) => reject(new Error(`testnet up exited (${code}): ${err}`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      up.removeAllListeners("exit");
      up.on("exit", resolve);
      up.kill("SIGINT");
    });
  return { dir, passphrase, layout: layout(dir), stop };
}

function layout(dir) {
  return JSON.parse(readFileSync(join(dir, "testnet.json"), "utf8"));
}

/** Runs the CLI; returns its parsed --json output. */
export function cli(home, args, passphrase = "a client passphrase") {
  const out = execFileSync(CLI, ["--home", home, "--json", ...args], {
    cwd: ROOT,
    env: { ...process.env, MEDSHARE_PASSPHRASE: passphrase },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const text = out.toString().trim();
  return text ? JSON.parse(text.split("\n").pop()) : null;
}
