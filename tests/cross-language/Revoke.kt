// The patient's phone, in Kotlin on the JVM (the mobile SDK): revoke the doctor.
// Args: WORKDIR RPC KUBO GENESIS
import java.io.File
import kotlinx.coroutines.runBlocking
import org.medshare.*

fun main(args: Array<String>) = runBlocking {
    val (work, rpc, kubo, genesis) = args
    uniffiEnsureInitialized()
    val alice = Identity.load("$work/alice.key", "cross-language passphrase")
    val record = File("$work/record.id").readText().trim()
    val doctor = File("$work/doctor.id").readText().trim()
    val v = Vault.connect(listOf(rpc), genesis, kubo)
    val report = v.revoke(alice, record, doctor)
    File("$work/height").writeText(v.height().toString())
    println("kotlin: revoked $doctor from $record (now version ${report.newVersion})")
}
