public import Foundation
import NIOSSL

/// The committed test PKI (`Certificates/`, see `regenerate.sh` there). Test-only: its keys are
/// public, so nothing real may ever trust it.
public enum TestPKI {
    /// The folder of PEM files, in the source tree.
    public static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "Certificates")

    /// The test CA, to pass as `caFile`.
    public static var caFile: String { folder.appending(path: "ca.pem").path }

    /// A CA that signed nothing the server presents: trusting it alone trusts nothing here.
    public static var otherCAFile: String { folder.appending(path: "other-ca.pem").path }

    static func serverContext(for identity: TestHTTPSServer.Identity) throws -> NIOSSLContext {
        let name = switch identity {
        case .localhost: "server"
        case .wrongHost: "wrong-host"
        }
        let chain = try NIOSSLCertificate.fromPEMFile(folder.appending(path: "\(name).pem").path)
        let key = try NIOSSLPrivateKey(file: folder.appending(path: "\(name)-key.pem").path, format: .pem)
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        return try NIOSSLContext(configuration: configuration)
    }
}
