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
        let (certificate, keyFile): (String, String) =
            switch identity {
            case .localhost: (folder.appending(path: "server.pem").path, folder.appending(path: "server-key.pem").path)
            case .wrongHost: (folder.appending(path: "wrong-host.pem").path, folder.appending(path: "wrong-host-key.pem").path)
            case .files(let certificate, let key): (certificate, key)
            }
        let chain = try NIOSSLCertificate.fromPEMFile(certificate)
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        return try NIOSSLContext(configuration: configuration)
    }
}
