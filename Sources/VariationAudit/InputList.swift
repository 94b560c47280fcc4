import Foundation
import Imaging

/// The image files an audit reads: given files and folders' images, as absolute paths.
public enum InputList {
    /// `files` then the images of `directories`, as absolute standardized paths, sorted and without duplicates:
    /// the order that positions and shards refer to.
    public static func sorted(files: [URL], directories: [URL]) throws -> [URL] {
        var all = files
        for d in directories { all += try ImageFiles.list(in: d) }
        let paths = Set(all.map { $0.standardizedFileURL.path })
        return paths.sorted().map { URL(fileURLWithPath: $0) }
    }
}

/// One part of an audit split over several machines: the inputs whose position in the sorted input list is
/// ≡ `index` (mod `count`).
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw VariationAuditError("shard \(index)/\(count): need 0 ≤ K < N and N ≥ 1")
        }
        self.index = index
        self.count = count
    }

    /// Parses `K/N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw VariationAuditError("--shard: expected K/N (for example 0/4), got '\(text)'")
        }
        try self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// Whether the input at `position` belongs to this shard.
    public func contains(position: Int) -> Bool { position % count == index }

    /// The shard a job scheduler assigns through the environment: a SLURM job array
    /// (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` (0 when unset), mod `SLURM_ARRAY_TASK_COUNT`) or a
    /// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` with `shardCount` from `--shard-count`). Nil when neither
    /// is set.
    public static func fromEnvironment(_ environment: [String: String], shardCount: Int?) throws -> Shard? {
        if let id = environment["SLURM_ARRAY_TASK_ID"], let count = environment["SLURM_ARRAY_TASK_COUNT"] {
            guard let i = Int(id), let n = Int(count), n >= 1 else {
                throw VariationAuditError(
                    "SLURM_ARRAY_TASK_ID=\(id) / SLURM_ARRAY_TASK_COUNT=\(count) are not a task id and a count")
            }
            let low = environment["SLURM_ARRAY_TASK_MIN"].flatMap { Int($0) } ?? 0
            return try Shard(index: ((i - low) % n + n) % n, count: n)
        }
        if let id = environment["JOB_COMPLETION_INDEX"] {
            guard let i = Int(id) else { throw VariationAuditError("JOB_COMPLETION_INDEX=\(id) is not an integer") }
            guard let n = shardCount else {
                throw VariationAuditError("JOB_COMPLETION_INDEX is set: give --shard-count N (the job's completions)")
            }
            return try Shard(index: i, count: n)
        }
        return nil
    }

    /// The database of this shard when several shards share one command line: `audit.sqlite` →
    /// `audit.shard-K-of-N.sqlite`.
    public func databaseURL(for base: URL) -> URL {
        let ext = base.pathExtension
        let stem = base.deletingPathExtension().lastPathComponent
        let name = "\(stem).shard-\(index)-of-\(count)" + (ext.isEmpty ? "" : ".\(ext)")
        return base.deletingLastPathComponent().appendingPathComponent(name)
    }
}
