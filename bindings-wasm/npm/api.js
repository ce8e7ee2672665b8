// The public API, re-exported by both entry modules (index.js for browsers and bundlers,
// node.js for Node) once they have loaded the WebAssembly module.
export {
  AuditEvent,
  Identity,
  RecordInfo,
  RecordMetadata,
  RevokeReport,
  Vault,
  VerifyReport,
  cid,
  errorCodes,
  storeConformance,
} from "./wasm/medshare_wasm.js";
export * from "./errors.js";
