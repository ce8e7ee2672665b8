export {
  AuditEvent,
  BlockStore,
  GrantOptions,
  Identity,
  OpenOptions,
  PublishOptions,
  RecordInfo,
  RecordMetadata,
  RevokeReport,
  Role,
  Vault,
  VerifyReport,
  cid,
  errorCodes,
  storeConformance,
} from "./wasm/medshare_wasm.js";
export * from "./errors.js";
