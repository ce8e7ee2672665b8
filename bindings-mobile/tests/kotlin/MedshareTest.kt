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

inline fun <reified T : MedshareException> expect(block: () -> Unit): T {
    try {
        block()
    } catch (e: MedshareException) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.simpleName}, got ${e::class.simpleName}: ${e.message}")
    }
    throw AssertionError("expected ${T::class.simpleName}, nothing was thrown")
}

suspend fun populated(store: ForeignStore? = null): Vault {
    val v = if (store == null) Vault.memory(authority()) else Vault.withStore(store, authority())
    v.register(patient(), null)
    v.register(doctor(), "GMC-1")
    v.register(doctor2(), "GMC-2")
    return v
}

val tests = linkedMapOf<String, suspend () -> Unit>(
    "full story" to {
        val v = populated()
        val data = ByteArray(3_000_000) { (it % 251).toByte() }
        val rec = v.publish(patient(), data, "application/dicom", "ct.dcm")
        v.grant(patient(), rec, doctor().id(), null, "cardiology")
        v.grant(patient(), rec, doctor2().id(), (System.currentTimeMillis() / 1000 + 3600).toULong(), null)
        for (who in listOf(patient(), doctor(), doctor2())) check(v.openRecord(who, rec).contentEquals(data)) { "read ${who.name()}" }
        check(v.recordsFor(doctor().id()).single().purpose == "cardiology") { "recordsFor" }
        val report = v.revoke(patient(), rec, doctor().id())
        check(report.newVersion == 2u && report.remaining == listOf(doctor2().id())) { "$report" }
        expect<MedshareException.AccessRevoked> { v.openRecord(doctor(), rec) }
        check(v.openRecord(doctor2(), rec).contentEquals(data)) { "doctor2 after revoke" }
        val verified = v.verify()
        check(verified.blocks == 8uL && verified.transactions == 9uL) { "$verified" }
        check(v.audit(rec).map { it.kind } == listOf("published", "granted", "granted", "revoked", "published", "granted")) { "audit" }
    },
    "files stream in and out" to {
        val v = populated()
        val src = File.createTempFile("medshare", ".bin").apply { writeBytes(ByteArray(5_000_000) { (it * 7).toByte() }); deleteOnExit() }
        val rec = v.publishFile(patient(), src.path, "application/pdf")
        val out = File.createTempFile("medshare", ".out").apply { deleteOnExit() }
        v.openRecordToFile(patient(), rec, out.path)
        check(out.readBytes().contentEquals(src.readBytes())) { "file round trip" }
    },
    "filesystem vault and lock" to {
        val dir = kotlin.io.path.createTempDirectory("medshare").toFile()
        expect<MedshareException.NoChain> { Vault.open(File(dir, "empty").path, null) }
        val v = Vault.open(File(dir, "store").path, authority())
        expect<MedshareException.StoreLocked> { Vault.open(File(dir, "store").path, null) }
        v.close()
        val again = Vault.open(File(dir, "store").path, null)
        check(again.verify().blocks == 1uL) { "reopened" }
        expect<MedshareException.ReadOnly> { again.register(patient(), null) }
    },
    "every exception" to {
        expect<MedshareException.WeakKey> { Identity.generate(Role.PATIENT, 1024u, "x") }
        expect<MedshareException.UnsupportedKeySize> { Identity.generate(Role.PATIENT, 2560u, "x") }
        expect<MedshareException.InvalidKey> { Identity.fromPkcs8Pem(Role.PATIENT, "nope", "x") }
        val file = patient().toKeyFile("right passphrase")
        expect<MedshareException.WrongPassphrase> { Identity.fromKeyFile(file, "wrong") }
        check(Identity.fromKeyFile(file, "right passphrase").id() == patient().id()) { "key file round trip" }
        expect<MedshareException.InvalidCid> { cid(byteArrayOf(1), "unixfs-v9") }
        val v = populated()
        val rec = v.publish(patient(), "lab".toByteArray(), "text/plain", "")
        expect<MedshareException.AccessDenied> { v.openRecord(doctor(), rec) }
        val expired = v.publish(patient(), "old".toByteArray(), "text/plain", "")
        v.grant(patient(), expired, doctor().id(), (System.currentTimeMillis() / 1000 + 2).toULong(), null)
        Thread.sleep(2100)
        expect<MedshareException.AccessExpired> { v.openRecord(doctor(), expired) }
        expect<MedshareException.Rejected> { v.grant(doctor(), rec, doctor2().id(), null, null) }
        expect<MedshareException.Rejected> { v.grant(patient(), rec, Identity.generate(Role.DOCTOR, 2048u, "x").id(), null, null) }
        expect<MedshareException.UnknownRecord> { v.openRecord(patient(), "baaaaaaaaaaaaaaaaaaaaaaaaaa") }
        expect<MedshareException.MalformedEnvelope> { v.openRecord(patient(), "not-a-record") }
        expect<MedshareException.TooLarge> { v.publish(patient(), byteArrayOf(1), "", "n".repeat(2000)) }
        val store = KotlinMemoryStore()
        val sv = populated(store)
        val r2 = sv.publish(patient(), ByteArray(10_000), "", "")
        store.corruptEverything()
        expect<MedshareException.CidMismatch> { sv.openRecord(patient(), r2) }
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
        val blocks = File(testdata, "vectors/envelope-v1.txt").readText().split("\n\n").filter { it.contains("name: ") }
        check(blocks.size == 3) { "envelope vectors" }
        for (b in blocks) {
            val f = b.lines().filter { ": " in it || it.endsWith(":") }.associate { it.substringBefore(":") to it.substringAfter(":").trim() }
            val env = f.getValue("envelope").chunked(2).map { it.toInt(16).toByte() }.toByteArray()
            check(cid(env, "unixfs-v1-2025") == f["cid_v1"] && cid(env, "unixfs-v0-2015") == f["cid_v0"]) { "cid of ${f["name"]}" }
            check(f["recipient"] == patient().id()) { "recipient id" }
        }
    },
    "Kotlin store backs a vault" to {
        val store = KotlinMemoryStore()
        val v = populated(store)
        val rec = v.publish(patient(), "kept in Kotlin".toByteArray(), "text/plain", "")
        v.grant(patient(), rec, doctor().id(), null, null)
        check(String(v.openRecord(doctor(), rec)) == "kept in Kotlin") { "read" }
        check(store.size > 5) { "blocks in the Kotlin store" }
        check(Vault.withStore(store, null).verify().blocks == 6uL) { "second vault over the same store" }
    },
    "core conformance suite on the Kotlin store" to {
        storeConformance(object : ForeignStoreFactory { override fun create(): ForeignStore = KotlinMemoryStore() })
    },
    "record published by the Rust CLI opens in Kotlin" to {
        val home = System.getenv("MEDSHARE_CLI_HOME") ?: error("set MEDSHARE_CLI_HOME")
        val pass = System.getenv("MEDSHARE_PASSPHRASE") ?: error("set MEDSHARE_PASSPHRASE")
        val bob = Identity.load("$home/identities/bob.key", pass)
        val v = Vault.open("$home/store", null)
        val rec = File("$home/record-id").readText().trim()
        check(v.openRecord(bob, rec).contentEquals(File("$home/source.json").readBytes())) { "CLI record differs" }
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
