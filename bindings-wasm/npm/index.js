// medshare-wasm for browsers and bundlers: loads the WebAssembly module next to this file
// (bundlers such as webpack 5 and Vite resolve the `new URL(..., import.meta.url)` below and
// emit the .wasm as an asset), registers the error classes, and re-exports the API.
import init, { __registerErrorClasses } from "./wasm/medshare_wasm.js";
import { errorClasses } from "./errors.js";

await init({ module_or_path: new URL("./wasm/medshare_wasm_bg.wasm", import.meta.url) });
__registerErrorClasses(errorClasses);

export * from "./api.js";
