import Foundation

/// Files written whole or not at all: through a temporary name in the same folder (`.NAME.PID.tmp`), renamed
/// over the target (rename(2), atomic on one file system) only when writing succeeded. The one implementation
/// used for every file the tool writes (arrays, images, indices, manifests, reports).
public enum AtomicFile {
    /// The temporary sibling `url` is written through: `.NAME.HOST-PID.tmp`, so that leftovers of a killed
    /// writer can be told from files another live process (on this or another machine) is writing.
    public static func temporaryURL(for url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(owner).tmp")
    }

    /// `HOST-PID` of this process.
    static let owner: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "host"
        return "\(host.replacingOccurrences(of: ".", with: "_"))-\(ProcessInfo.processInfo.processIdentifier)"
    }()

    /// Renames `temp` over `url`; errors name `url`.
    public static func commit(_ temp: URL, to url: URL) throws {
        if rename(temp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            throw CheckpointError(file: url.path, "cannot move \(temp.lastPathComponent) into place: \(reason)")
        }
    }

    /// Calls `write` with the temporary URL, then renames it over `url`; on failure the temporary file is removed
    /// and `url` is untouched.
    public static func write(to url: URL, _ write: (URL) throws -> Void) throws {
        let temp = temporaryURL(for: url)
        do {
            try write(temp)
            try commit(temp, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw error
        }
    }

    /// Writes `data` to `url` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { temp in
            do {
                try data.write(to: temp)
            } catch {
                throw CheckpointError(file: url.path, "cannot write: \(error.localizedDescription)")
            }
        }
    }

    /// Removes temporary files that killed writers on this machine left in `directory` (`.*.HOST-PID.tmp` whose
    /// process is gone); files of live processes and of other machines are left alone.
    public static func removeLeftovers(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let host = owner.split(separator: "-").dropLast().joined(separator: "-")
        for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            let tag = name.dropLast(4).split(separator: ".").last.map(String.init) ?? ""
            let parts = tag.split(separator: "-")
            guard parts.count >= 2, let pid = Int32(parts[parts.count - 1]),
                parts.dropLast().joined(separator: "-") == host
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            }
        }
    }
}
