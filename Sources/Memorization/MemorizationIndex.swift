import Dispatch
import Foundation
import Tensors

/// How an index compares vectors.
public enum IndexMetric: String, Sendable, CaseIterable, Codable {
    /// Inner product (cosine for L2-normalized vectors); larger is closer.
    case innerProduct = "ip"
    /// Squared Euclidean distance, as faiss reports it; smaller is closer.
    case l2 = "l2"

    var faissValue: Int32 { self == .innerProduct ? 0 : 1 }
}

/// One search hit: a stored row id (global across shards) and its score under the index's metric.
public struct Neighbor: Sendable, Equatable, Hashable {
    /// Global row id (row order of the embedding shards).
    public var id: Int
    /// Inner product, or squared L2 distance.
    public var score: Float

    public init(id: Int, score: Float) {
        self.id = id
        self.score = score
    }
}

/// A nearest-neighbour index over training embeddings. Two implementations: `FaissIndex` (any faiss factory,
/// files compatible with Python faiss) and `BruteForceIndex` (exact, in memory; for small sets and tests).
public protocol MemorizationIndex: AnyObject {
    /// Vector length.
    var dimension: Int { get }
    /// How scores are computed.
    var metric: IndexMetric { get }
    /// Number of stored vectors; ids are `0..<count` in insertion order.
    var count: Int { get }
    /// Appends rows of `vectors` `[n, dimension]`.
    func add(_ vectors: Tensor) throws
    /// The `k` best stored rows for each row of `queries` `[n, dimension]`, best first.
    func search(_ queries: Tensor, k: Int) throws -> [[Neighbor]]
    /// The stored vector `id` (as the index holds it).
    func reconstruct(_ id: Int) throws -> [Float]
}

/// Exact search over vectors kept in memory: one GEMM per block of stored rows, then a per-query top-k.
/// Ties keep the lower id first.
public final class BruteForceIndex: MemorizationIndex, @unchecked Sendable {
    public let dimension: Int
    public let metric: IndexMetric
    private var storage: [Float] = []

    /// An empty index.
    public init(dimension: Int, metric: IndexMetric) {
        self.dimension = dimension
        self.metric = metric
    }

    public var count: Int { storage.count / max(dimension, 1) }

    public func add(_ vectors: Tensor) throws {
        guard vectors.rank == 2, vectors.shape[1] == dimension else {
            throw MemorizationError("brute-force index: vectors must be [n, \(dimension)], got \(vectors.shape)")
        }
        vectors.withUnsafeBufferPointer { storage.append(contentsOf: $0) }
    }

    public func reconstruct(_ id: Int) throws -> [Float] {
        guard id >= 0, id < count else { throw MemorizationError("brute-force index: id \(id) out of range") }
        return Array(storage[(id * dimension)..<((id + 1) * dimension)])
    }

    public func search(_ queries: Tensor, k: Int) throws -> [[Neighbor]] {
        guard queries.rank == 2, queries.shape[1] == dimension else {
            throw MemorizationError("brute-force index: queries must be [n, \(dimension)], got \(queries.shape)")
        }
        guard k > 0 else { throw MemorizationError("search: k must be positive, got \(k)") }
        var top = TopK(queries: queries.shape[0], k: k, metric: metric)
        let block = 32_768
        var start = 0
        while start < count {
            let rows = min(block, count - start)
            let slice = try Tensor(
                shape: [rows, dimension], values: Array(storage[(start * dimension)..<((start + rows) * dimension)]))
            try top.accumulate(queries: queries, block: slice, firstID: start)
            start += rows
        }
        return top.results()
    }
}

/// Running top-k of several queries over blocks of stored vectors (exact search, streaming).
public struct TopK: Sendable {
    public let k: Int
    public let metric: IndexMetric
    private var scores: [Float]
    private var ids: [Int]
    private var filled: [Int]
    private let queryCount: Int

    /// Empty lists for `queries` queries.
    public init(queries: Int, k: Int, metric: IndexMetric) {
        self.k = k
        self.metric = metric
        queryCount = queries
        scores = [Float](repeating: 0, count: queries * k)
        ids = [Int](repeating: -1, count: queries * k)
        filled = [Int](repeating: 0, count: queries)
    }

    /// Scores `queries` `[q, d]` against `block` `[n, d]` (rows `firstID ..< firstID + n`) and keeps the best.
    public mutating func accumulate(queries: Tensor, block: Tensor, firstID: Int) throws {
        guard queries.rank == 2, block.rank == 2, queries.shape[1] == block.shape[1], queries.shape[0] == queryCount
        else {
            throw MemorizationError("exact search: queries \(queries.shape) and block \(block.shape) do not match")
        }
        let n = block.shape[0]
        var products = try matmul(queries, block, transposeB: true)  // [q, n]
        if metric == .l2 {
            // ‖q − x‖² = ‖q‖² − 2 q·x + ‖x‖²
            let qn = rowSquaredNorms(queries)
            let xn = rowSquaredNorms(block)
            products.withUnsafeMutableBufferPointer { p in
                for i in 0..<queryCount {
                    for j in 0..<n { p[i * n + j] = max(0, qn[i] - 2 * p[i * n + j] + xn[j]) }
                }
            }
        }
        let k = self.k
        let metric = self.metric
        scores.withUnsafeMutableBufferPointer { sc in
            ids.withUnsafeMutableBufferPointer { id in
                filled.withUnsafeMutableBufferPointer { fi in
                    products.withUnsafeBufferPointer { p in
                        let box = TopKPointers(
                            scores: sc.baseAddress!, ids: id.baseAddress!, filled: fi.baseAddress!,
                            products: p.baseAddress!)
                        parallelChunks(queryCount, costPerItem: n) { range in
                            for q in range {
                                box.insertRow(q, n: n, k: k, firstID: firstID, metric: metric)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Best-first neighbours of each query.
    public func results() -> [[Neighbor]] {
        (0..<queryCount).map { q in
            (0..<filled[q]).map { j in Neighbor(id: ids[q * k + j], score: scores[q * k + j]) }
        }
    }
}

private struct TopKPointers: @unchecked Sendable {
    let scores: UnsafeMutablePointer<Float>
    let ids: UnsafeMutablePointer<Int>
    let filled: UnsafeMutablePointer<Int>
    let products: UnsafePointer<Float>

    /// Insertion into a sorted list of length ≤ k; a candidate equal to the worst kept is not taken
    /// (the earlier, lower id wins ties).
    func insertRow(_ q: Int, n: Int, k: Int, firstID: Int, metric: IndexMetric) {
        let s = scores + q * k
        let ids = self.ids + q * k
        var count = filled[q]
        let row = products + q * n
        let ip = metric == .innerProduct
        for j in 0..<n {
            let v = row[j]
            if v.isNaN { continue }
            if count == k {
                let worst = s[k - 1]
                if ip ? !(v > worst) : !(v < worst) { continue }
            }
            var pos = count == k ? k - 1 : count
            while pos > 0 && (ip ? v > s[pos - 1] : v < s[pos - 1]) {
                s[pos] = s[pos - 1]
                ids[pos] = ids[pos - 1]
                pos -= 1
            }
            s[pos] = v
            ids[pos] = firstID + j
            if count < k { count += 1 }
        }
        filled[q] = count
    }
}

func rowSquaredNorms(_ x: Tensor) -> [Float] {
    let n = x.shape[0]
    let d = x.shape[1]
    return x.withUnsafeBufferPointer { p in
        (0..<n).map { i in
            var s: Float = 0
            for j in 0..<d { s += p[i * d + j] * p[i * d + j] }
            return s
        }
    }
}
