import Dispatch
import Foundation
import Tensors

/// What `benchmarkIndex` measured.
public struct IndexBenchmarkResult: Sendable, Codable {
    /// Indexed vectors and their dimension.
    public var vectors: Int
    public var dimension: Int
    /// Neighbours per query, and the number of (fresh, unindexed) queries.
    public var k: Int
    public var queries: Int
    /// The automatic (or given) factory, why, and the tuned search parameter.
    public var factory: String
    public var factoryReason: String
    public var searchParameter: String?
    public var searchParameterValue: Int?
    /// Seconds to generate the synthetic data, and to build (sample, train, add, tune).
    public var generateSeconds: Double
    public var buildSeconds: Double
    /// Size of the written index file, and the process's peak resident memory (VmHWM) after the run.
    public var indexBytes: Int
    public var peakResidentBytes: Int
    /// Single-query latency (one query per `search` call): median and 95th percentile, in ms.
    public var msPerQueryMedian: Double
    public var msPerQueryP95: Double
    /// Per-query time when all queries go in one batch, in ms.
    public var msPerQueryBatched: Double
    /// recall@k of the fresh queries against exact search over all vectors.
    public var recall: Double
    /// Worker threads available (faiss's OpenMP and the exact search).
    public var threads: Int
}

/// Benchmarks the automatic index on synthetic clustered unit vectors (`syntheticEmbeddings`): builds it as
/// `varaudit index build` would, writes it to a temporary file for its size, and measures single and
/// batched query latency and recall@k of `queries` fresh vectors against exact search.
public func benchmarkIndex(
    vectors: Int, dim: Int, k: Int = 10, queries: Int = 500, seed: UInt64 = 0, factory: String? = nil,
    progress: (String) -> Void = { _ in }
) throws -> IndexBenchmarkResult {
    guard vectors > 0, dim > 0, k > 0, queries > 0 else {
        throw MemorizationError("bench: vectors, dim, k and queries must be positive")
    }
    let clusters = max(1, Int(Double(vectors).squareRoot()))
    let t0 = Date()
    progress("bench: generating \(vectors) × \(dim) clustered unit vectors (\(clusters) clusters)")
    let data = syntheticEmbeddings(count: vectors + queries, dimension: dim, clusters: clusters, seed: seed)
    let all = data.storage
    let base = Tensor(
        shape: [vectors, dim], storage: TensorStorage(borrowing: all.base, count: vectors * dim, owner: all))
    let fresh = Tensor(
        shape: [queries, dim],
        storage: TensorStorage(borrowing: all.base + vectors * dim, count: queries * dim, owner: all))
    let generateSeconds = Date().timeIntervalSince(t0)

    var configuration = IndexBuildConfiguration()
    configuration.factory = factory
    configuration.metric = .innerProduct
    configuration.seed = seed
    let source = try InMemoryVectors(base)
    let (index, info) = try buildIndex(source: source, configuration: configuration, progress: progress)

    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
        "varaudit-bench-\(UUID().uuidString).index")
    defer { try? FileManager.default.removeItem(at: file) }
    try index.write(to: file)
    let indexBytes = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0

    progress("bench: exact search for \(queries) queries")
    var exact = TopK(queries: queries, k: k, metric: .innerProduct)
    try source.forEachBlock { first, block in try exact.accumulate(queries: fresh, block: block, firstID: first) }
    let truth = exact.results()

    let tb = Date()
    let batched = try index.search(fresh, k: k)
    let msBatched = Date().timeIntervalSince(tb) * 1000 / Double(queries)
    var latencies: [Double] = []
    let rows = fresh.scalars
    for q in 0..<queries {
        let one = try Tensor(shape: [1, dim], values: Array(rows[(q * dim)..<((q + 1) * dim)]))
        let ts = DispatchTime.now().uptimeNanoseconds
        _ = try index.search(one, k: k)
        latencies.append(Double(DispatchTime.now().uptimeNanoseconds - ts) / 1e6)
    }
    latencies.sort()
    let recall = recallAtK(found: batched, truth: truth, k: k)
    progress(
        String(
            format: "bench: recall@%d %.4f, %.3f ms/query median (single), %.3f batched", k, recall,
            latencies[latencies.count / 2], msBatched))
    return IndexBenchmarkResult(
        vectors: vectors, dimension: dim, k: k, queries: queries, factory: info.factory,
        factoryReason: info.factoryReason, searchParameter: info.searchParameter,
        searchParameterValue: info.searchParameterValue, generateSeconds: generateSeconds,
        buildSeconds: info.buildSeconds, indexBytes: indexBytes, peakResidentBytes: peakResidentBytes(),
        msPerQueryMedian: latencies[latencies.count / 2],
        msPerQueryP95: latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.95))],
        msPerQueryBatched: msBatched, recall: recall, threads: ProcessInfo.processInfo.activeProcessorCount)
}

/// Synthetic embeddings for tests and benchmarks: `clusters` centres `c ~ N(0, I/d)`, each row
/// `normalize(c_j + spread · N(0, I/d))` with `j = row mod clusters`, deterministic in `seed`
/// (rows are generated in parallel blocks, each with its own SplitMix64 stream).
public func syntheticEmbeddings(
    count: Int, dimension d: Int, clusters: Int, spread: Float = 0.6, seed: UInt64, normalized: Bool = true
) -> Tensor {
    var centres = [Float](repeating: 0, count: clusters * d)
    var rng = SplitMix64(seed: seed ^ 0xC3A5_C85C_97CB_3127)
    let scale = 1 / Float(d).squareRoot()
    for i in centres.indices { centres[i] = rng.gaussian() * scale }
    var out = Tensor(zeros: [count, d])
    let blockRows = 4096
    let blocks = (count + blockRows - 1) / blockRows
    out.withUnsafeMutableBufferPointer { buf in
        let dst = UncheckedPointer(buf.baseAddress!)
        centres.withUnsafeBufferPointer { cbuf in
            let cp = UncheckedConstPointer(cbuf.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: blocks) { b in
                var rng = SplitMix64(seed: seed &+ UInt64(b) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
                for row in (b * blockRows)..<min(count, (b + 1) * blockRows) {
                    let c = cp.base + (row % clusters) * d
                    let x = dst.base + row * d
                    var norm: Float = 0
                    for j in 0..<d {
                        let v = c[j] + spread * scale * rng.gaussian()
                        x[j] = v
                        norm += v * v
                    }
                    if normalized, norm > 0 {
                        let inv = 1 / norm.squareRoot()
                        for j in 0..<d { x[j] *= inv }
                    }
                }
            }
        }
    }
    return out
}

private struct UncheckedPointer: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    init(_ base: UnsafeMutablePointer<Float>) { self.base = base }
}

private struct UncheckedConstPointer: @unchecked Sendable {
    let base: UnsafePointer<Float>
    init(_ base: UnsafePointer<Float>) { self.base = base }
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status), or 0 where unavailable.
func peakResidentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ")
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return 0
}
