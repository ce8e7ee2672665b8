// A separate tiny Kotlin project using the SDK jar and the native library.
import kotlinx.coroutines.runBlocking
import org.medshare.*

fun main() = runBlocking {
    val hospital = Identity.generate(Role.AUTHORITY, 2048u, "hospital")
    val alice = Identity.generate(Role.PATIENT, 2048u, "alice")
    val v = Vault.memory(hospital)
    v.register(alice)
    val rec = v.publish(alice, "{}".toByteArray(), "application/fhir+json", "b.json")
    check(String(v.openRecord(alice, rec)) == "{}")
    println("kotlin jar: ok; cid ${cid("hello IPFS\n".toByteArray(), "unixfs-v1-2025")}")
}
