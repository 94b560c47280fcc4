import Foundation

/// Files written whole or not at all: through a temporary name in the same folder (`.NAME.PID.tmp`), renamed
/// over the target (rename(2), atomic on one file system) only when writing succeeded. The one implementation
/// used for every file the tool writes (arrays, images, indices, manifests, reports).
public enum AtomicFile {
    /// The temporary sibling `url` is written through.
    public static func temporaryURL(for url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
    }

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

    /// Removes temporary files a killed writer left in `directory` (`.*.tmp`).
    public static func removeLeftovers(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }
}
