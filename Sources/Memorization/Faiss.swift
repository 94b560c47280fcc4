import CFaiss
import Foundation
import Tensors

/// Turns a CFaiss status into a thrown `MemorizationError` carrying faiss's message.
@inline(__always)
func faissCheck(_ status: Int32, _ context: @autoclosure () -> String) throws {
    guard status != 0 else { return }
    let message = String(cString: cfaiss_last_error())
    throw MemorizationError("\(context()): faiss: \(message)")
}

/// A faiss float index (any factory string: `Flat`, `HNSW32`, `IVF1024,Flat`, `OPQ64_768,IVF4096_HNSW32,PQ64x8`,
/// ...) behind the C ABI in `CFaiss`.
///
/// Searching is safe from several threads at once; training, adding and setting parameters are not.
public final class FaissIndex: MemorizationIndex, @unchecked Sendable {
    let handle: OpaquePointer
    /// The file this index was read from, if any (named in errors).
    public let path: String?

    /// An empty index from a faiss factory string (`faiss.index_factory(d, description, metric)`).
    public init(dimension: Int, factory: String, metric: IndexMetric) throws {
        var out: OpaquePointer?
        let status = cfaiss_index_factory(&out, Int32(dimension), factory, metric.faissValue)
        try faissCheck(status, "index factory '\(factory)' (d = \(dimension), metric \(metric.rawValue))")
        guard let out else { throw MemorizationError("index factory '\(factory)': no index returned") }
        handle = out
        path = nil
    }

    /// Reads an index written by faiss (ours or Python's `faiss.write_index`). With `memoryMap`, the inverted
    /// lists of IVF indices stay in the file and are paged in on demand (`faiss.IO_FLAG_MMAP`); other types
    /// load fully. Errors name the file.
    public init(contentsOf url: URL, memoryMap: Bool = false) throws {
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else {
            throw MemorizationError(file: file, "no such index file")
        }
        var out: OpaquePointer?
        let flags = memoryMap ? Int32(CFAISS_IO_FLAG_MMAP) : 0
        let status = cfaiss_index_read(&out, file, flags)
        if status != 0 {
            throw MemorizationError(
                file: file, "not a readable faiss index: \(String(cString: cfaiss_last_error()))")
        }
        guard let out else { throw MemorizationError(file: file, "not a readable faiss index") }
        handle = out
        path = file
    }

    deinit { cfaiss_index_free(handle) }

    private var context: String { path.map { "\($0)" } ?? "faiss index" }

    /// Writes the index with `faiss.write_index` (readable by Python faiss).
    public func write(to url: URL) throws {
        try faissCheck(cfaiss_index_write(handle, url.path), "\(url.path): cannot write index")
    }

    public var dimension: Int { Int(cfaiss_index_d(handle)) }
    public var count: Int { Int(cfaiss_index_ntotal(handle)) }
    public var metric: IndexMetric { cfaiss_index_metric(handle) == 0 ? .innerProduct : .l2 }
    /// Whether the index is trained (always true for Flat and HNSW).
    public var isTrained: Bool { cfaiss_index_is_trained(handle) != 0 }
    /// Number of IVF lists, or nil when the index has no IVF stage.
    public var nlist: Int? {
        let v = cfaiss_index_nlist(handle)
        return v > 0 ? Int(v) : nil
    }
    /// IVF lists probed per query, or nil when the index has no IVF stage.
    public var nprobe: Int? {
        let v = cfaiss_index_nprobe(handle)
        return v > 0 ? Int(v) : nil
    }
    /// HNSW search breadth, or nil when the index has no HNSW stage.
    public var efSearch: Int? {
        let v = cfaiss_index_ef_search(handle)
        return v > 0 ? Int(v) : nil
    }
    /// The faiss class names, outer first, e.g. `IndexPreTransform(IndexIVFPQ)`.
    public var typeName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        cfaiss_index_type_name(handle, &buffer, buffer.count)
        let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Sets a search-time parameter through `faiss.ParameterSpace` (`nprobe`, `efSearch`, `quantizer_efSearch`, ...).
    public func setParameter(_ name: String, _ value: Double) throws {
        try faissCheck(cfaiss_index_set_parameter(handle, name, value), "\(context): cannot set \(name) = \(value)")
    }

    /// Trains on `vectors` `[n, d]` (IVF centroids, PQ codebooks; a no-op for Flat and HNSW).
    public func train(_ vectors: Tensor) throws {
        try checkShape(vectors, "training vectors")
        try vectors.withUnsafeBufferPointer { buf in
            try faissCheck(cfaiss_index_train(handle, Int64(vectors.shape[0]), buf.baseAddress), "\(context): train")
        }
    }

    public func add(_ vectors: Tensor) throws {
        try checkShape(vectors, "vectors")
        try vectors.withUnsafeBufferPointer { buf in
            try faissCheck(cfaiss_index_add(handle, Int64(vectors.shape[0]), buf.baseAddress), "\(context): add")
        }
    }

    public func search(_ queries: Tensor, k: Int) throws -> [[Neighbor]] {
        try checkShape(queries, "queries")
        guard k > 0 else { throw MemorizationError("search: k must be positive, got \(k)") }
        let n = queries.shape[0]
        var distances = [Float](repeating: 0, count: n * k)
        var labels = [Int64](repeating: -1, count: n * k)
        try queries.withUnsafeBufferPointer { buf in
            try faissCheck(
                cfaiss_index_search(handle, Int64(n), buf.baseAddress, Int64(k), &distances, &labels),
                "\(context): search")
        }
        return (0..<n).map { q in
            (0..<k).compactMap { j in
                let id = labels[q * k + j]
                return id < 0 ? nil : Neighbor(id: Int(id), score: distances[q * k + j])
            }
        }
    }

    public func reconstruct(_ id: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        try faissCheck(cfaiss_index_reconstruct(handle, Int64(id), &out), "\(context): reconstruct \(id)")
        return out
    }

    /// Reconstructs rows `range` as `[range.count, d]` (exact for Flat/HNSW/IVF-Flat, decoded codes for PQ).
    public func reconstruct(range: Range<Int>) throws -> Tensor {
        var out = Tensor(zeros: [range.count, dimension])
        try out.withUnsafeMutableBufferPointer { buf in
            try faissCheck(
                cfaiss_index_reconstruct_n(handle, Int64(range.lowerBound), Int64(range.count), buf.baseAddress),
                "\(context): reconstruct \(range)")
        }
        return out
    }

    private func checkShape(_ x: Tensor, _ what: String) throws {
        guard x.rank == 2, x.shape[1] == dimension else {
            throw MemorizationError("\(context): \(what) must be [n, \(dimension)], got \(x.shape)")
        }
    }
}

/// A faiss binary index (Hamming distance over `bits`-bit codes), e.g. for perceptual hashes.
public final class FaissBinaryIndex: @unchecked Sendable {
    let handle: OpaquePointer
    /// Code length in bits.
    public let bits: Int

    /// An exhaustive `IndexBinaryFlat` over `bits`-bit codes (a multiple of 8).
    public init(bits: Int) throws {
        var out: OpaquePointer?
        try faissCheck(cfaiss_binary_index_flat(&out, Int32(bits)), "binary index over \(bits) bits")
        guard let out else { throw MemorizationError("binary index: none returned") }
        handle = out
        self.bits = bits
    }

    /// Reads a binary index written by `faiss.write_index_binary`; errors name the file.
    public init(contentsOf url: URL) throws {
        var out: OpaquePointer?
        let status = cfaiss_binary_index_read(&out, url.path, 0)
        if status != 0 {
            throw MemorizationError(
                file: url.path, "not a readable faiss binary index: \(String(cString: cfaiss_last_error()))")
        }
        guard let out else { throw MemorizationError(file: url.path, "not a readable faiss binary index") }
        handle = out
        bits = Int(cfaiss_binary_index_d(out))
    }

    deinit { cfaiss_binary_index_free(handle) }

    /// Number of stored codes.
    public var count: Int { Int(cfaiss_binary_index_ntotal(handle)) }

    /// Writes with `faiss.write_index_binary`.
    public func write(to url: URL) throws {
        try faissCheck(cfaiss_binary_index_write(handle, url.path), "\(url.path): cannot write binary index")
    }

    /// Adds codes, `bits / 8` bytes each, concatenated.
    public func add(_ codes: [UInt8]) throws {
        let bytes = bits / 8
        guard codes.count % bytes == 0 else {
            throw MemorizationError("binary index: \(codes.count) bytes is not a whole number of \(bytes)-byte codes")
        }
        try faissCheck(cfaiss_binary_index_add(handle, Int64(codes.count / bytes), codes), "binary index: add")
    }

    /// The `k` nearest stored codes of each query code, by Hamming distance (ascending).
    public func search(_ codes: [UInt8], k: Int) throws -> [[(id: Int, distance: Int)]] {
        let bytes = bits / 8
        guard codes.count % bytes == 0, k > 0 else {
            throw MemorizationError("binary index: queries must be whole \(bytes)-byte codes and k positive")
        }
        let n = codes.count / bytes
        var distances = [Int32](repeating: 0, count: n * k)
        var labels = [Int64](repeating: -1, count: n * k)
        try faissCheck(
            cfaiss_binary_index_search(handle, Int64(n), codes, Int64(k), &distances, &labels), "binary index: search")
        return (0..<n).map { q in
            (0..<k).compactMap { j in
                labels[q * k + j] < 0 ? nil : (id: Int(labels[q * k + j]), distance: Int(distances[q * k + j]))
            }
        }
    }
}
