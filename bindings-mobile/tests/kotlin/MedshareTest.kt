// Kotlin tests of the medshare mobile SDK, run on the JVM against the real native library.
// Prints "N passed, M failed" and exits non-zero on any failure.

import java.io.File
import kotlinx.coroutines.runBlocking
import org.medshare.*

/** A block store written in Kotlin: what an Android app's own storage would implement. */
class KotlinMemoryStore : ForeignStore {
    private val blocks = HashMap<String, ByteArray>()
    private var headCid: String? = null
    val size: Int get() = synchronized(this) { blocks.size }

    override suspend fun get(cid: String): ByteArray? = synchronized(this) { blocks[cid]?.copyOf() }
    override suspend fun put(cid: String, data: ByteArray) { synchronized(this) { blocks.putIfAbsent(cid, data.copyOf()) } }
    override suspend fun has(cid: String): Boolean = synchronized(this) { blocks.containsKey(cid) }
    override suspend fun delete(cid: String) { synchronized(this) { blocks.remove(cid) } }
    override suspend fun head(): String? = synchronized(this) { headCid }
    override suspend fun compareAndSwapHead(expected: String?, new: String?): Boolean = synchronized(this) {
        if (headCid != expected) return false
        headCid = new
        true
    }

    fun corruptEverything() = synchronized(this) {
        for (k in blocks.keys.toList()) if (k.startsWith("bafk")) blocks[k] = blocks[k]!!.also { it[0] = (it[0].toInt() xor 1).toByte() }
    }
}

val testdata = File(System.getenv("MEDSHARE_TESTDATA") ?: error("set MEDSHARE_TESTDATA"))
fun key(name: String) = File(testdata, "keys/$name").readText()
fun patient() = Identity.fromPkcs8Pem(Role.PATIENT, key("patient-2048.pem"), "alice")
fun doctor() = Identity.fromPkcs8Pem(Role.DOCTOR, key("doctor-2048.pem"), "bob")
fun doctor2() = Identity.fromPkcs8Pem(Role.DOCTOR, key("doctor2-2048.pem"), "carol")
fun authority() = Identity.fromPkcs8Pem(Role.AUTHORITY, key("authority-2048.pem"), "hospital")

fun check(cond: Boolean, what: () -> String) { if (!cond) throw AssertionError(what()) }

/** The exception's precise code, whatever its category class. */
val MedshareException.code: ErrorCode get() = when (this) {
    is MedshareException.Identity -> code
    is MedshareException.Integrity -> code
    is MedshareException.Access -> code
    is MedshareException.Ledger -> code
    is MedshareException.Store -> code
    is MedshareException.Network -> code
    is MedshareException.InvalidInput -> code
    is MedshareException.Io -> code
}

/** Runs `block`, which must throw a MedshareException of category class T with `code`. */
inline fun <reified T : MedshareException> expect(code: ErrorCode, block: () -> Unit): T {
    try {
        block()
    } catch (e: MedshareException) {
        if (e is T && e.code == code) return e
        throw AssertionError("expected ${T::class.simpleName}($code), got ${e::class.simpleName}(${e.code}): ${e.message}")
    }
    throw AssertionError("expected ${T::class.simpleName}($code), nothing was thrown")
}

fun now() = System.currentTimeMillis() / 1000

/** A vault whose authority endorsed two doctors; the patient and both doctors registered. */
suspend fun populated(store: ForeignStore? = null): Vault {
    val v = if (store == null) Vault.memory(authority()) else Vault.withStore(store, authority())
    v.register(patient())
    v.register(doctor(), Endorsement.sign(authority(), v.genesis(), doctor().id(), "GMC-1"))
    v.register(doctor2(), Endorsement.sign(authority(), v.genesis(), doctor2().id(), "GMC-2"))
    return v
}

fun hex(s: String) = s.chunked(2).map { it.toInt(16).toByte() }.toByteArray()

/** Blocks of `key: value` lines separated by blank lines, as the shared vector files are. */
fun blocks(file: File) = file.readText().split("\n\n").map { b ->
    b.lines().filter { !it.startsWith("#") && ":" in it }.associate { it.substringBefore(":") to it.substringAfter(":").trim() }
}.filter { "name" in it }

val tests = linkedMapOf<String, suspend () -> Unit>(
    "full story" to {
        val v = populated()
        val data = ByteArray(3_000_000) { (it % 251).toByte() }
        val rec = v.publish(patient(), data, "application/dicom", "ct.dcm")
        v.grant(patient(), rec, doctor().id(), GrantOptionsRecord(purpose = "CAREMGT", note = "echo before Friday"))
        v.grant(patient(), rec, doctor2().id(), GrantOptionsRecord(expiresInSeconds = 3600uL))
        for (who in listOf(patient(), doctor(), doctor2())) check(v.openRecord(who, rec).contentEquals(data)) { "read ${who.name()}" }
        val granted = v.recordsFor(doctor().id()).single()
        check(granted.grant?.purpose == "CAREMGT" && granted.grant?.hasNote == true) { "recordsFor $granted" }
        check(v.grantNote(doctor(), rec, doctor().id()) == "echo before Friday") { "note for the doctor" }
        check(v.grantNote(patient(), rec, doctor().id()) == "echo before Friday") { "note for the owner" }
        expect<MedshareException.Access>(ErrorCode.NOT_A_RECIPIENT) { v.grantNote(doctor2(), rec, doctor().id()) }
        val expires = v.accessList(rec).single { it.doctor == doctor2().id() }.expires!!
        check(expires in (now() + 3590).toULong()..(now() + 3610).toULong()) { "expiry $expires" }
        val meta = v.metadata(doctor(), rec)
        check(meta.name == "ct.dcm" && meta.mediaType == "application/dicom" && meta.size == data.size.toULong()) { "$meta" }
        val report = v.revoke(patient(), rec, doctor().id())
        check(report.newVersion == 2u && report.remaining == listOf(doctor2().id())) { "$report" }
        expect<MedshareException.Access>(ErrorCode.ACCESS_REVOKED) { v.openRecord(doctor(), rec) }
        check(v.openRecord(doctor2(), rec).contentEquals(data)) { "doctor2 after revoke" }
        val verified = v.verify()
        check(verified.blocks == 8uL && verified.transactions == 9uL && verified.head == v.head() && verified.height == v.height()) { "$verified" }
        check(verified.genesis == v.genesis() && verified.network == "medshare-local") { "$verified" }
        val audit = v.audit(rec)
        check(audit.map { it.kind } == listOf("published", "granted", "granted", "revoked", "published", "granted")) { "audit" }
        check(audit[1].purpose == "CAREMGT" && audit[1].doctor == doctor().id() && audit[0].content != null) { "audit details" }
        check(v.verifyContent().isEmpty()) { "content intact" }
    },
    "receipts prove a grant and a revocation offline" to {
        val v = populated()
        val rec = v.publish(patient(), "{}".toByteArray(), "application/fhir+json", "c.json")
        v.grant(patient(), rec, doctor().id(), GrantOptionsRecord(purpose = "COC"))
        val kept = v.receipt(v.audit(rec).single { it.kind == "granted" }.tx)
        v.revoke(patient(), rec, doctor().id())
        val revokeTx = v.audit(rec).single { it.kind == "revoked" }.tx
        val proof = v.receipt(revokeTx)
        val g = verifyReceipt(kept, v.genesis())
        check(g.kind == "Grant" && g.record == rec && g.doctor == doctor().id() && g.purpose == "COC") { "$g" }
        val r = verifyReceipt(proof, v.genesis())
        check(r.kind == "Revoke" && r.tx == revokeTx && r.index > g.index && r.signers == r.authorities) { "$r" }
        check(proof.length < 8192 && v.trustedCheckpoint() != null) { "${proof.length} bytes" }
        v.trustCheckpoint(v.trustedCheckpoint()!!)
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) { v.trustCheckpoint("{}") }
        expect<MedshareException.Ledger>(ErrorCode.WRONG_GENESIS) {
            verifyReceipt(proof, "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
        }
        expect<MedshareException.Integrity>(ErrorCode.INVALID_PROOF) {
            verifyReceipt(proof.replaceFirst("\"index\": ", "\"index\": 1"), v.genesis())
        }
    },
    "FHIR bundles of a record and a patient" to {
        val v = populated()
        val rec = v.publish(patient(), "{}".toByteArray(), "application/fhir+json", "secret-name.json")
        v.grant(patient(), rec, doctor().id(), GrantOptionsRecord(purpose = "COC", note = "private words"))
        val b = v.fhirRecord(rec, "R5")
        check("\"resourceType\":\"Consent\"" in b && "\"status\":\"active\"" in b) { b }
        check("private words" !in b && "secret-name" !in b) { "clear text in the bundle" }
        check("\"type\":\"permit\"" in v.fhirPatient(patient().id(), "R4")) { "R4 provision" }
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) { v.fhirRecord(rec, "R3") }
    },
    "key rotation keeps the account" to {
        val v = populated()
        val rec = v.publish(patient(), "before rotation".toByteArray(), "text/plain", "a.txt")
        v.grant(patient(), rec, doctor().id(), GrantOptionsRecord())
        val rotated = patient().rotated()
        check(rotated.id() == patient().id() && rotated.keyId() != patient().keyId()) { "same account, new key" }
        val report = v.rotateKey(patient(), rotated)
        check(report.rekeyed == listOf(rec)) { "$report" }
        check(String(v.openRecord(rotated, rec)) == "before rotation") { "new key reads" }
        check(String(v.openRecord(doctor(), rec)) == "before rotation") { "doctor still reads" }
        expect<MedshareException.Identity>(ErrorCode.INVALID_KEY) { v.openRecord(patient(), rec) }
        val later = v.publish(rotated, "after".toByteArray())
        check(v.record(later).owner == patient().id()) { "owner is the account" }
    },
    "files stream in and out, atomically" to {
        val v = populated()
        val src = File.createTempFile("medshare", ".bin").apply { writeBytes(ByteArray(5_000_000) { (it * 7).toByte() }); deleteOnExit() }
        val rec = v.publishFile(patient(), src.path, "application/pdf")
        val dir = kotlin.io.path.createTempDirectory("medshare-out").toFile()
        val out = File(dir, "copy.pdf")
        val meta = v.openRecordToFile(patient(), rec, out.path)
        check(out.readBytes().contentEquals(src.readBytes()) && meta.name == src.name) { "file round trip" }
        val denied = File(dir, "denied.pdf")
        expect<MedshareException.Access>(ErrorCode.ACCESS_DENIED) { v.openRecordToFile(doctor(), rec, denied.path) }
        check(dir.list()!!.toList() == listOf("copy.pdf")) { "nothing left by the refused read: ${dir.list()!!.toList()}" }
        val car = File(dir, "export.car")
        val exported = v.exportCar(car.path)
        check(exported.damaged.isEmpty() && exported.head == v.head() && car.length() > 5_000_000) { "$exported" }
        val imported = Vault.importCar(File(dir, "imported").path, car.path, v.genesis())
        check(imported.openRecord(patient(), rec).contentEquals(src.readBytes())) { "read from the imported CAR" }
        imported.close()
        expect<MedshareException.Ledger>(ErrorCode.WRONG_GENESIS) {
            Vault.importCar(File(dir, "other").path, car.path, Vault.memory().genesis())
        }
    },
    "filesystem vault and lock" to {
        val dir = kotlin.io.path.createTempDirectory("medshare").toFile()
        expect<MedshareException.Ledger>(ErrorCode.NO_CHAIN) { Vault.open(File(dir, "empty").path) }
        val v = Vault.open(File(dir, "store").path, authority())
        expect<MedshareException.Store>(ErrorCode.STORE_LOCKED) { Vault.open(File(dir, "store").path) }
        v.close()
        val again = Vault.open(File(dir, "store").path)
        check(again.verify().blocks == 1uL) { "reopened" }
        check(again.opened().from == "genesis" && again.opened().rejected == null) { "a short chain has no snapshot" }
        expect<MedshareException.Ledger>(ErrorCode.READ_ONLY) { again.register(patient()) }
        check(again.gc() == 0uL) { "nothing to collect" }
    },
    "a long chain opens from its snapshot" to {
        val dir = kotlin.io.path.createTempDirectory("medshare").toFile()
        val v = Vault.open(File(dir, "store").path, authority())
        v.register(patient())
        v.register(doctor(), Endorsement.sign(authority(), v.genesis(), doctor().id(), "GMC-1"))
        val rec = v.publish(patient(), "{}".toByteArray(), "application/fhir+json", "")
        repeat(130) { v.grant(patient(), rec, doctor().id(), GrantOptionsRecord()) } // 2 units each
        val height = v.height()
        v.close()
        val again = Vault.open(File(dir, "store").path)
        val opened = again.opened()
        check(opened.from == "snapshot") { "opened from ${opened.from}" }
        check(opened.height!! + opened.replayed!! == height && again.height() == height) { "snapshot height" }
        check(opened.transactions!! >= opened.height!! && opened.rejected == null) { "snapshot transactions" }
        check(again.openRecord(doctor(), rec).contentEquals("{}".toByteArray())) { "read after a snapshot open" }
        again.close()
    },
    "every category and code" to {
        expect<MedshareException.Identity>(ErrorCode.WEAK_KEY) { Identity.generate(Role.PATIENT, 1024u, "x") }
        expect<MedshareException.Identity>(ErrorCode.UNSUPPORTED_KEY_SIZE) { Identity.generate(Role.PATIENT, 2560u, "x") }
        expect<MedshareException.Identity>(ErrorCode.INVALID_KEY) { Identity.fromPkcs8Pem(Role.PATIENT, "nope", "x") }
        val file = patient().toKeyFile("right passphrase")
        expect<MedshareException.Identity>(ErrorCode.WRONG_PASSPHRASE) { Identity.fromKeyFile(file, "wrong passphrase") }
        check(Identity.fromKeyFile(file, "right passphrase").id() == patient().id()) { "key file round trip" }
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) { cid(byteArrayOf(1), "unixfs-v9") }
        val v = populated()
        val rec = v.publish(patient(), "lab".toByteArray(), "text/plain", "")
        expect<MedshareException.Access>(ErrorCode.ACCESS_DENIED) { v.openRecord(doctor(), rec) }
        val expired = v.publish(patient(), "old".toByteArray(), "text/plain", "")
        v.grant(patient(), expired, doctor().id(), GrantOptionsRecord(expiresAt = (now() + 2).toULong()))
        Thread.sleep(2100)
        expect<MedshareException.Access>(ErrorCode.ACCESS_EXPIRED) { v.openRecord(doctor(), expired) }
        expect<MedshareException.Ledger>(ErrorCode.REJECTED) { v.grant(doctor(), rec, doctor2().id(), GrantOptionsRecord()) }
        expect<MedshareException.Ledger>(ErrorCode.REJECTED) { v.grant(patient(), rec, Identity.generate(Role.DOCTOR, 2048u, "x").id(), GrantOptionsRecord()) }
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) { v.grant(patient(), rec, doctor().id(), GrantOptionsRecord(purpose = "SHOPPING")) }
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) {
            v.grant(patient(), rec, doctor().id(), GrantOptionsRecord(expiresAt = 1uL, expiresInSeconds = 1uL))
        }
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) { v.register(Identity.generate(Role.DOCTOR, 2048u, "no licence")) }
        expect<MedshareException.Access>(ErrorCode.UNKNOWN_RECORD) { v.openRecord(patient(), "baaaaaaaaaaaaaaaaaaaaaaaaaa") }
        expect<MedshareException.InvalidInput>(ErrorCode.INVALID_INPUT) { v.openRecord(patient(), "not-a-record") }
        expect<MedshareException.InvalidInput>(ErrorCode.TOO_LARGE) { v.publish(patient(), byteArrayOf(1), "", "n".repeat(2000)) }
        val store = KotlinMemoryStore()
        val sv = populated(store)
        val r2 = sv.publish(patient(), ByteArray(10_000), "", "")
        store.corruptEverything()
        expect<MedshareException.Integrity>(ErrorCode.CID_MISMATCH) { sv.openRecord(patient(), r2) }
    },
    "codes and purposes mirror the core" to {
        val codes = errorCodes()
        check(codes.all { it.code != null }) { "codes the binding lacks: ${codes.filter { it.code == null }.map { it.name }}" }
        check(codes.mapNotNull { it.code }.toSet() == ErrorCode.entries.toSet()) { "ErrorCode has values the core lacks" }
        check(codes.map { it.category }.toSet() == setOf("Identity", "Integrity", "Access", "Ledger", "Store", "Network", "InvalidInput", "Io")) {
            "categories ${codes.map { it.category }.toSet()}"
        }
        check(purposes().map { it.code }.containsAll(listOf("TREAT", "ETREAT", "HPAYMT", "PATRQT"))) { "purposes" }
    },
    "pinned vectors" to {
        var n = 0
        File(testdata, "cid-public.tsv").readLines().filter { it.isNotBlank() && !it.startsWith("#") }.forEach {
            val (profile, size, expected) = it.split("\t")
            val data = ByteArray(size.toInt()) { i -> (i % 251).toByte() }
            check(cid(data, profile) == expected) { "$profile $size" }
            n++
        }
        check(n == 12) { "vector count $n" }
        val vectors = blocks(File(testdata, "vectors/envelope-v2.txt"))
        check(vectors.size == 3) { "envelope vectors" }
        for (f in vectors) {
            val env = hex(f.getValue("envelope"))
            check(cid(env, "unixfs-v1-2025") == f["cid_v1"] && cid(env, "unixfs-v0-2015") == f["cid_v0"]) { "cid of ${f["name"]}" }
            check(f["recipient"] == patient().keyId()) { "recipient id" }
            check(openEnvelope(patient(), env).contentEquals(hex(f.getValue("plaintext")))) { "plaintext of ${f["name"]}" }
        }
    },
    "negative testkit" to {
        val cases = blocks(File(testdata, "testkit/cases.txt"))
        check(cases.size >= 20) { "${cases.size} cases" }
        val dir = kotlin.io.path.createTempDirectory("medshare-testkit").toFile()
        for (c in cases) {
            val data = hex(c.getValue("data"))
            val code = try {
                when (c["kind"]) {
                    "envelope" -> openEnvelope(Identity.fromPkcs8Pem(Role.PATIENT, key("${c["key"]}.pem"), ""), data)
                    "keyfile" -> Identity.fromKeyFile(String(data), c.getValue("passphrase"))
                    "pkcs8" -> Identity.fromPkcs8Pem(Role.PATIENT, String(data), "")
                    "car" -> {
                        val car = File(dir, "${c["name"]}.car").apply { writeBytes(data) }
                        Vault.importCar(File(dir, "${c["name"]}-store").path, car.path, c["genesis"])
                    }
                    else -> throw AssertionError("unknown kind ${c["kind"]}")
                }
                null
            } catch (e: MedshareException) { e.code }
            val want = c.getValue("expect")
            check(code != null && code.name.replace("_", "") == want.uppercase()) { "${c["name"]}: expected $want, got $code" }
        }
    },
    "Kotlin store backs a vault" to {
        val store = KotlinMemoryStore()
        val v = populated(store)
        val rec = v.publish(patient(), "kept in Kotlin".toByteArray(), "text/plain", "")
        v.grant(patient(), rec, doctor().id(), GrantOptionsRecord())
        check(String(v.openRecord(doctor(), rec)) == "kept in Kotlin") { "read" }
        check(store.size > 5) { "blocks in the Kotlin store" }
        check(Vault.withStore(store).verify().blocks == 6uL) { "second vault over the same store" }
    },
    "core conformance suite on the Kotlin store" to {
        storeConformance(object : ForeignStoreFactory { override fun create(): ForeignStore = KotlinMemoryStore() })
    },
    "a phone on the network: connect, publish, read through a gateway, revoke" to {
        val env = { k: String -> System.getenv(k) ?: error("set $k (test-mobile.sh does)") }
        val genesis = env("NET_GENESIS")
        val hospital = Identity.load(env("NET_AUTHORITY_KEY"), env("MEDSHARE_TESTNET_PASSPHRASE"))
        val alice = Identity.generate(Role.PATIENT, 2048u, "alice")
        val bob = Identity.generate(Role.DOCTOR, 2048u, "bob")
        // The patient's phone: node 0's RPC and kubo; no authority key.
        val v = Vault.connect(listOf(env("NET_RPC0")), genesis, env("NET_KUBO0"))
        check(v.genesis() == genesis) { "genesis" }
        v.register(alice)
        val d = Vault.connect(listOf(env("NET_RPC1")), genesis, env("NET_KUBO1"))
        d.register(bob, Endorsement.sign(hospital, genesis, bob.id(), "GMC-77"))
        val data = ByteArray(1_000_000) { (it * 13).toByte() }
        val rec = v.publish(alice, data, "application/dicom", "x.dcm")
        v.grant(alice, rec, bob.id(), GrantOptionsRecord(purpose = "COC"))
        // The doctor's app reads through node 1's gateway only.
        val reader = Vault.connect(listOf(env("NET_RPC1")), genesis, gateways = listOf(env("NET_GATEWAY1")))
        // Node 1 commits the heights node 0 certified a moment later.
        suspend fun caughtUp(height: ULong) {
            repeat(100) { if (reader.height() >= height) return; kotlinx.coroutines.delay(200); reader.sync() }
            error("node 1 did not reach block $height")
        }
        caughtUp(v.height())
        check(reader.openRecord(bob, rec).contentEquals(data)) { "read through the gateway" }
        // A light client with only the genesis CID: proven answers through node 1.
        val light = LightClient.connect(listOf(env("NET_RPC1")), genesis)
        var access: RecordAccess? = null
        for (attempt in 0 until 100) {
            access = light.accessList(rec)
            if (access?.grants?.map { it.doctor } == listOf(bob.id())) break
            kotlinx.coroutines.delay(200)
        }
        check(access?.grants?.single()?.purpose == "COC") { "light access list: $access" }
        check(access?.owner == alice.id()) { "light owner" }
        check(light.recordsOf(bob.id()).any { it.record == rec }) { "light records of the doctor" }
        val absent = rec.substring(0, 5) + (if (rec[5] == 'a') "b" else "a") + rec.substring(6)
        check(light.accessList(absent) == null) { "absent record" }
        val again = LightClient.connect(listOf(env("NET_RPC0")), genesis, light.trust())
        check(again.accessList(rec) != null) { "trust carried over" }
        expect<MedshareException.Ledger>(ErrorCode.WRONG_GENESIS) {
            LightClient.connect(listOf(env("NET_RPC0")), "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
        }
        expect<MedshareException.Ledger>(ErrorCode.READ_ONLY) { reader.publish(alice, byteArrayOf(1)) }
        expect<MedshareException.Ledger>(ErrorCode.REJECTED) { d.grant(bob, rec, bob.id(), GrantOptionsRecord()) }
        v.revoke(alice, rec, bob.id())
        caughtUp(v.height())
        expect<MedshareException.Access>(ErrorCode.ACCESS_REVOKED) { reader.openRecord(bob, rec) }
        expect<MedshareException.Network>(ErrorCode.UNAVAILABLE) {
            Vault.connect(listOf("http://127.0.0.1:9"), genesis, gateways = listOf("http://127.0.0.1:9"), timeoutMs = 2000uL)
        }
    },
    "break-glass on the network: both hospitals' nodes release their shares, the doctor reads" to {
        val env = { k: String -> System.getenv(k) ?: error("set $k (test-mobile.sh does)") }
        val genesis = env("NET_GENESIS")
        val hospital = Identity.load(env("NET_AUTHORITY_KEY"), env("MEDSHARE_TESTNET_PASSPHRASE"))
        val fay = Identity.generate(Role.PATIENT, 2048u, "fay")
        val gus = Identity.generate(Role.DOCTOR, 2048u, "gus")
        val v = Vault.connect(listOf(env("NET_RPC0")), genesis, env("NET_KUBO0"))
        v.register(fay)
        val d = Vault.connect(listOf(env("NET_RPC1")), genesis, env("NET_KUBO1"))
        d.register(gus, Endorsement.sign(hospital, genesis, gus.id(), "GMC-88"))
        val data = ByteArray(200_000) { (it * 5).toByte() }
        val rec = v.publish(fay, data, "application/pdf", "allergies.pdf", emergency = true)
        for (attempt in 0 until 100) { d.sync(); if (d.height() >= v.height()) break; kotlinx.coroutines.delay(200) }
        expect<MedshareException.Access>(ErrorCode.ACCESS_DENIED) { d.openRecord(gus, rec) }
        val request = d.requestEmergency(gus, rec, "collapsed on arrival", 3600uL)
        var read: ByteArray? = null
        for (attempt in 0 until 300) {
            d.sync()
            read = try { d.openRecord(gus, rec) } catch (e: MedshareException.Access) { null }
            if (read != null) break
            kotlinx.coroutines.delay(200)
        }
        check(read?.contentEquals(data) == true) { "the emergency doctor read other bytes" }
        val status = d.emergencyStatus(gus, request)
        check(status.open && status.invalidShares.isEmpty() && status.emergency.threshold.toInt() == 2) { "status $status" }
        check(d.emergencyJustification(gus, request) == "collapsed on arrival") { "justification" }
        // The patient's phone talks to node 0, which commits those heights a moment later.
        for (attempt in 0 until 100) {
            v.sync()
            if (v.audit(rec).any { it.kind == "share-released" }) break
            kotlinx.coroutines.delay(200)
        }
        check(v.emergencies(true).any { it.request == request }) { "listed as unreviewed" }
        check(v.audit(rec).any { it.kind == "emergency" }) { "in the patient's audit" }
        check(v.audit(rec).any { it.kind == "share-released" }) { "the releases in the patient's audit" }
        // Hospital 0 endorsed the doctor: another hospital reviews.
        expect<MedshareException.Ledger>(ErrorCode.REJECTED) { v.reviewEmergency(hospital, request, "justified") }
        val other = Identity.load(env("NET_AUTHORITY_KEY1"), env("MEDSHARE_TESTNET_PASSPHRASE"))
        v.reviewEmergency(other, request, "justified")
        check(v.emergencies(true).none { it.request == request }) { "reviewed" }
        check(v.rekey(fay, rec) == 2u) { "re-keyed" }
    },
    "record published by the Rust CLI opens in Kotlin" to {
        val home = System.getenv("MEDSHARE_CLI_HOME") ?: error("set MEDSHARE_CLI_HOME")
        val pass = System.getenv("MEDSHARE_PASSPHRASE") ?: error("set MEDSHARE_PASSPHRASE")
        val bob = Identity.load("$home/identities/bob.key", pass)
        val v = Vault.open("$home/store")
        val rec = File("$home/record-id").readText().trim()
        check(v.openRecord(bob, rec).contentEquals(File("$home/source.json").readBytes())) { "CLI record differs" }
        check(v.recordsFor(bob.id()).single().grant?.purpose == "COC") { "purpose given on the CLI" }
        v.close()
    },
)

fun main() {
    uniffiEnsureInitialized()
    var passed = 0
    var failed = 0
    for ((name, body) in tests) {
        try {
            runBlocking { body() }
            println("ok   $name")
            passed++
        } catch (t: Throwable) {
            println("FAIL $name: $t")
            failed++
        }
    }
    println("$passed passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
