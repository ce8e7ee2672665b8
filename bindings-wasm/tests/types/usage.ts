// Compiled with `tsc --noEmit` against the package's declarations: the API as a TypeScript user
// writes it. Never run; its job is to fail to type-check if the declarations drift.
import {
  AccessRevokedError,
  type AuditEvent,
  type BlockStore,
  type ErrorCode,
  Endorsement,
  Identity,
  IntegrityError,
  MedshareError,
  type RecordInfo,
  type RevokeReport,
  type Role,
  Vault,
  type VerifyReport,
  cid,
  errorCodes,
  openEnvelope,
  purposes,
  storeConformance,
} from "medshare-wasm";
import { type IndexedDbStore, openIndexedDbStore } from "medshare-wasm/idb-store";

class MapStore implements BlockStore {
  private blocks = new Map<string, Uint8Array>();
  private current: string | null = null;
  async get(cid: string): Promise<Uint8Array | null> {
    return this.blocks.get(cid) ?? null;
  }
  async put(cid: string, data: Uint8Array): Promise<void> {
    this.blocks.set(cid, data);
  }
  has(cid: string): boolean {
    return this.blocks.has(cid);
  }
  delete(cid: string): void {
    this.blocks.delete(cid);
  }
  head(): string | null {
    return this.current;
  }
  compareAndSwapHead(expected: string | null, next: string | null): boolean {
    if (this.current !== expected) return false;
    this.current = next;
    return true;
  }
}

export async function story(): Promise<string> {
  const role: Role = "patient";
  const alice: Identity = Identity.generate(role, 2048, "alice");
  const bob = Identity.generate("doctor", 3072);
  const authority = Identity.fromKeyFile(alice.toKeyFile("pw"), "pw");
  const vault: Vault = await Vault.openOrCreate(authority, new MapStore());
  const txCid: string = await vault.register(alice);
  const endorsement: Endorsement = Endorsement.sign(authority, await vault.genesis(), bob, "GMC-1");
  await vault.register(bob, endorsement);
  const rec: string = await vault.publish(alice, new Uint8Array([1, 2, 3]), {
    name: "a.bin",
    mediaType: "application/octet-stream",
    onProgress: (n: number) => void n,
  });
  await vault.grant(alice, rec, bob.id, { expires: Date.now() / 1000 + 60, purpose: "TREAT", note: "care" });
  await vault.grant(alice, rec, bob, { expiresIn: 3600 });
  const data: Uint8Array = await vault.openRecord(bob, rec, { onProgress: (n) => void n });
  const infos: RecordInfo[] = await vault.recordsFor(bob);
  const expires: number | null | undefined = infos[0]?.grant?.expires;
  const trail: AuditEvent[] = await vault.audit(rec);
  const note: string | null = await vault.grantNote(alice, rec, bob);
  const report: RevokeReport = await vault.revoke(alice, rec, bob.id);
  const v: VerifyReport = await vault.verify();
  const { car } = await vault.exportCar();
  const copy: Vault = await Vault.importCar(car, { genesis: v.genesis });
  const readOnly: Vault = await Vault.withStore(new MapStore());
  const memory: Vault = await Vault.memory();
  const net: Vault = await Vault.connect({ nodes: ["http://127.0.0.1:26657"], genesis: v.genesis, gateways: ["http://127.0.0.1:8080"] });
  await storeConformance(() => new MapStore());
  const idb: IndexedDbStore = await openIndexedDbStore("medshare-typed");
  await Vault.withStore(idb);
  idb.close();
  try {
    await vault.openRecord(bob, rec);
  } catch (e) {
    if (e instanceof AccessRevokedError) {
      const code: "AccessRevoked" = e.code;
      return code;
    }
    if (e instanceof IntegrityError) {
      return e.category;
    }
    if (e instanceof MedshareError) {
      const code: ErrorCode = e.code;
      const rule: string | undefined = e.rule;
      return `${code} ${rule}`;
    }
  }
  const codes: string[] = errorCodes().map((c) => c.code);
  const plain: Uint8Array = openEnvelope(alice, new Uint8Array(0));
  return [txCid, data.length, expires, trail.length, note, report.newVersion, report.deletedBlocks,
    v.blocks, v.head, copy, readOnly, memory, net, codes.length, purposes().length, plain.length,
    cid(data), cid(new Uint16Array(2), "unixfs-v0-2015"), bob.publicKeyPem, bob.bits, bob.role, bob.name, bob.keyId].join();
}
