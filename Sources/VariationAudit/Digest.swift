import Checkpoints
import Crypto
import Foundation

/// SHA-256 digests (swift-crypto) of files, bytes and network weights, as lower-case hex.
public enum Digest {
    /// The digest of a file's bytes, read in 4 MiB pieces; errors name the file.
    public static func sha256(fileAt url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw VariationAuditError(file: url.path, "cannot read")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 4 << 20) ?? Data()
            } catch {
                throw VariationAuditError(file: url.path, "cannot read: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    /// The digest of bytes in memory.
    public static func sha256(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }

    /// The digest of a text's UTF-8 bytes.
    public static func sha256(_ text: String) -> String { sha256(Data(text.utf8)) }

    /// A digest of a CLIP vision tower and its projection as float32 values: every tensor under `prefix.`
    /// (named relative to it) and `visual_projection.weight`, sorted by name, each as name, shape and values.
    /// Equal digests mean the two towers compute the same embedding, whatever file layout holds them.
    public static func visionTower(_ archive: any TensorArchive, prefix: String) throws -> String {
        var hasher = SHA256()
        let keys = archive.keys.filter { $0.hasPrefix(prefix + ".") || $0 == "visual_projection.weight" }
        let named = keys.map { key in
            (key == "visual_projection.weight" ? key : String(key.dropFirst(prefix.count + 1)), key)
        }.sorted { $0.0 < $1.0 }
        for (name, key) in named {
            let t = try archive.tensor(named: key)
            hasher.update(data: Data("\(name)\u{0}\(t.shape)\u{0}".utf8))
            t.withUnsafeBufferPointer { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
