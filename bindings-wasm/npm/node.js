// medshare-wasm for Node: compiles the WebAssembly module from disk, registers the error
// classes, and re-exports the API (the same as index.js for browsers).
import { readFileSync } from "node:fs";
import { initSync, __registerErrorClasses } from "./wasm/medshare_wasm.js";
import { errorClasses } from "./errors.js";

initSync({ module: readFileSync(new URL("./wasm/medshare_wasm_bg.wasm", import.meta.url)) });
__registerErrorClasses(errorClasses);

export * from "./api.js";
