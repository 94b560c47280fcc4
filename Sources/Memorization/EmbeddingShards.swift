import Checkpoints
import Foundation
import Tensors

/// Rows of vectors read in order, block by block, with global row ids (`0..<count`).
public protocol VectorSource {
    /// Total rows.
    var count: Int { get }
    /// Vector length.
    var dimension: Int { get }
    /// Calls `body(firstRow, block)` for consecutive blocks `[rows, dimension]` covering all rows in order.
    func forEachBlock(_ body: (Int, Tensor) throws -> Void) throws
}

extension VectorSource {
    /// The rows `ids` (any order, each in `0..<count`) as `[ids.count, dimension]`, in the order given;
    /// one pass over the source.
    public func gather(_ ids: [Int]) throws -> Tensor {
        var wanted: [Int: [Int]] = [:]  // row id → positions in the output
        for (position, id) in ids.enumerated() {
            guard id >= 0, id < count else { throw MemorizationError("row \(id) out of range 0..<\(count)") }
            wanted[id, default: []].append(position)
        }
        let d = dimension
        var out = Tensor(zeros: [ids.count, d])
        try out.withUnsafeMutableBufferPointer { dst in
            try forEachBlock { first, block in
                let rows = block.shape[0]
                block.withUnsafeBufferPointer { src in
                    for r in 0..<rows {
                        guard let positions = wanted[first + r] else { continue }
                        for p in positions {
                            for j in 0..<d { dst[p * d + j] = src[r * d + j] }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Vectors already in memory, `[n, d]`.
public struct InMemoryVectors: VectorSource, Sendable {
    /// The rows.
    public let vectors: Tensor
    /// Rows per block handed out by `forEachBlock`.
    public var blockRows: Int = 65_536

    public init(_ vectors: Tensor) throws {
        guard vectors.rank == 2, vectors.shape[0] > 0, vectors.shape[1] > 0 else {
            throw MemorizationError("vectors must be a non-empty [n, d] array, got \(vectors.shape)")
        }
        self.vectors = vectors
    }

    public var count: Int { vectors.shape[0] }
    public var dimension: Int { vectors.shape[1] }

    public func forEachBlock(_ body: (Int, Tensor) throws -> Void) throws {
        if count <= blockRows {
            try body(0, vectors)
            return
        }
        let d = dimension
        let storage = vectors.storage
        var start = 0
        while start < count {
            let rows = min(blockRows, count - start)
            // A view into the rows (no copy); the storage outlives the block.
            let view = TensorStorage(borrowing: storage.base + start * d, count: rows * d, owner: storage)
            try body(start, Tensor(shape: [rows, d], storage: view))
            start += rows
        }
    }
}

/// One `.npy` shard of embeddings `[rows, dimension]` (float16 or float32; float64 is read too).
public struct EmbeddingShard: Sendable, Equatable, Codable {
    /// The file.
    public let path: String
    /// Rows in this shard.
    public let rows: Int
    /// Vector length.
    public let dimension: Int
    /// NumPy dtype string (`<f2`, `<f4`, `<f8`).
    public let dtype: String
    /// Global id of the shard's first row.
    public let firstRow: Int
}

/// Embedding shards read in order as one source with global row ids. A directory is a clip-retrieval
/// output: `DIR/img_emb/img_emb_{i}.npy` (or `DIR/img_emb_{i}.npy`) in numeric order of `i`, which must run
/// 0, 1, 2, ... without gaps. Every shard is checked up front from its header: an `.npy` file, 2-D,
/// non-empty, a float dtype, the same dimension as the first shard, and the file size its header promises.
public struct EmbeddingShards: VectorSource, Sendable {
    /// The shards in row order.
    public let shards: [EmbeddingShard]

    public var count: Int { shards.last.map { $0.firstRow + $0.rows } ?? 0 }
    public var dimension: Int { shards.first?.dimension ?? 0 }

    /// Expands `sources` (files and clip-retrieval folders, in the order given) and checks every shard.
    public init(sources: [URL]) throws {
        guard !sources.isEmpty else { throw MemorizationError("no embedding files given") }
        var files: [URL] = []
        for source in sources { files += try Self.expand(source) }
        var shards: [EmbeddingShard] = []
        var first = 0
        for file in files {
            let header = try shardHeader(file)
            if let d = shards.first?.dimension, header.shape[1] != d {
                throw MemorizationError(
                    file: file.path,
                    "dimension \(header.shape[1]) differs from \(d) of the first shard \(shards[0].path)")
            }
            shards.append(
                EmbeddingShard(
                    path: file.path, rows: header.shape[0], dimension: header.shape[1], dtype: header.descr,
                    firstRow: first))
            first += header.shape[0]
        }
        self.shards = shards
    }

    /// The shard files of a source: the file itself, or a clip-retrieval folder's `img_emb_{i}.npy` in order.
    static func expand(_ url: URL) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw MemorizationError(file: url.path, "no such file or folder")
        }
        guard isDirectory.boolValue else { return [url] }
        var folder = url
        let nested = url.appendingPathComponent("img_emb")
        var nestedIsDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: nested.path, isDirectory: &nestedIsDirectory),
            nestedIsDirectory.boolValue
        {
            folder = nested
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var numbered: [(Int, String)] = []
        for name in names where name.hasPrefix("img_emb_") && name.hasSuffix(".npy") {
            let middle = name.dropFirst("img_emb_".count).dropLast(".npy".count)
            guard let i = Int(middle), i >= 0 else { continue }
            numbered.append((i, name))
        }
        numbered.sort { $0.0 < $1.0 }
        guard !numbered.isEmpty else {
            throw MemorizationError(file: url.path, "folder holds no img_emb_{i}.npy shards (clip-retrieval layout)")
        }
        for (position, entry) in numbered.enumerated() where entry.0 != position {
            throw MemorizationError(
                file: folder.path, "shard img_emb_\(position).npy is missing (found img_emb_\(entry.0).npy next)")
        }
        return numbered.map { folder.appendingPathComponent($0.1) }
    }

    /// The clip-retrieval metadata next to a folder source's shards: `DIR/metadata/metadata_{i}.parquet` (or
    /// `DIR/metadata_{i}.parquet`) for i = 0, 1, ... without gaps, one per `img_emb_{i}.npy`; nil when the
    /// source is a file or the folder has no such metadata.
    public static func clipRetrievalMetadata(for source: URL) throws -> [URL]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { return nil }
        let nested = source.appendingPathComponent("metadata")
        var nestedIsDirectory: ObjCBool = false
        let folder =
            FileManager.default.fileExists(atPath: nested.path, isDirectory: &nestedIsDirectory)
                && nestedIsDirectory.boolValue ? nested : source
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var numbered: [(Int, String)] = []
        for name in names where name.hasPrefix("metadata_") && name.hasSuffix(".parquet") {
            guard let i = Int(name.dropFirst("metadata_".count).dropLast(".parquet".count)), i >= 0 else { continue }
            numbered.append((i, name))
        }
        guard !numbered.isEmpty else { return nil }
        numbered.sort { $0.0 < $1.0 }
        for (position, entry) in numbered.enumerated() where entry.0 != position {
            throw MemorizationError(
                file: folder.path,
                "metadata_\(position).parquet is missing (found metadata_\(entry.0).parquet next)")
        }
        let shards = try expand(source)
        guard shards.count == numbered.count else {
            throw MemorizationError(
                file: folder.path,
                "holds \(numbered.count) metadata_{i}.parquet files but there are \(shards.count) img_emb_{i}.npy shards"
            )
        }
        return numbered.map { folder.appendingPathComponent($0.1) }
    }

    /// Reads shard `i` as `[rows, dimension]` Float32.
    public func read(shard i: Int) throws -> Tensor {
        let shard = shards[i]
        let tensor: Tensor
        do {
            tensor = try NPY.read(url: URL(fileURLWithPath: shard.path))
        } catch let error as CheckpointError {
            throw MemorizationError(error.description)
        }
        guard tensor.shape == [shard.rows, shard.dimension] else {
            throw MemorizationError(
                file: shard.path,
                "shape changed since it was checked: \(tensor.shape) vs [\(shard.rows), \(shard.dimension)]")
        }
        return tensor
    }

    public func forEachBlock(_ body: (Int, Tensor) throws -> Void) throws {
        for i in shards.indices { try body(shards[i].firstRow, try read(shard: i)) }
    }
}

/// The header of an embedding shard: a float `.npy` array `[N, D]` with N, D > 0 (checked by `NPY.header`
/// against the file size). Errors name the file.
func shardHeader(_ url: URL) throws -> NPY.Header {
    let header: NPY.Header
    do {
        header = try NPY.header(of: url)
    } catch let error as CheckpointError {
        throw MemorizationError(error.description)
    }
    let file = url.path
    guard ["<f2", "<f4", "<f8"].contains(header.descr) else {
        throw MemorizationError(file: file, "embeddings must be float16 or float32, got dtype '\(header.descr)'")
    }
    guard header.shape.count == 2 else {
        throw MemorizationError(file: file, "embeddings must be 2-D [N, D], got shape \(header.shape)")
    }
    guard header.shape[0] > 0 else { throw MemorizationError(file: file, "empty shard (0 rows)") }
    guard header.shape[1] > 0 else { throw MemorizationError(file: file, "zero-dimensional embeddings") }
    return header
}
